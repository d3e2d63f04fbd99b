package io.olmoppl.job.testing;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.olmoppl.job.Main;
import io.olmoppl.job.cli.Args;
import io.olmoppl.job.report.ScoreSummary;
import io.olmoppl.job.score.Request;
import io.olmoppl.job.score.ScoreCommand;
import io.olmoppl.runtime.DjlSettings;
import io.olmoppl.testing.Refcases;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * One in-process {@code local[2]} session for a test class, as the job runs it without
 * spark-submit.
 */
public abstract class SparkTestBase {
  protected static SparkSession spark;

  @BeforeAll
  public static void startSpark() {
    DjlSettings.configure();
    spark =
        SparkSession.builder()
            .master("local[2]")
            .appName("olmo-ppl-test")
            .config("spark.ui.enabled", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.sql.shuffle.partitions", "2")
            .getOrCreate();
  }

  @AfterAll
  public static void stopSpark() {
    spark.stop();
    SparkSession.clearDefaultSession();
    SparkSession.clearActiveSession();
  }

  /** Runs {@code olmo-ppl score ...} on the shared session. @return the summary */
  protected static ScoreSummary score(String... args) throws IOException {
    String[] argv = new String[args.length + 1];
    argv[0] = "score";
    System.arraycopy(args, 0, argv, 1, args.length);
    Args a = Args.parse("score", argv, 1, ScoreCommand.OPTIONS, ScoreCommand.FLAGS);
    return ScoreCommand.run(spark, Request.from(a), new PrintStream(new ByteArrayOutputStream()));
  }

  /** Result of a CLI run: exit code and both streams. */
  public record Cli(int code, String out, String err) {}

  public static Cli cli(String... args) {
    ByteArrayOutputStream o = new ByteArrayOutputStream();
    ByteArrayOutputStream e = new ByteArrayOutputStream();
    int code =
        Main.run(
            args,
            new PrintStream(o, true, StandardCharsets.UTF_8),
            new PrintStream(e, true, StandardCharsets.UTF_8));
    return new Cli(code, o.toString(StandardCharsets.UTF_8), e.toString(StandardCharsets.UTF_8));
  }

  /**
   * The smallest reference checkpoint (p01: olmo, tied, f32), the one most CLI tests score with.
   */
  public static String model() {
    return Refcases.dir("p01_olmo_tied_f32").toString();
  }

  /** Runs {@code olmo-ppl score --model MODEL --input IN --output OUT EXTRA...} through the CLI. */
  public static Cli scoreCli(String model, Path in, Path out, String... extra) {
    return cli(
        concat(
            new String[] {
              "score", "--model", model, "--input", in.toString(), "--output", out.toString()
            },
            extra));
  }

  /**
   * Runs {@code olmo-ppl make-checkpoint --layout LAYOUT --out OUT --hidden 16 --heads 2 EXTRA...}
   * through the CLI: a tiny random checkpoint of the layout.
   */
  public static Cli makeTinyCheckpoint(String layout, Path out, String... extra) {
    return cli(
        concat(
            new String[] {
              "make-checkpoint",
              "--layout",
              layout,
              "--out",
              out.toString(),
              "--hidden",
              "16",
              "--heads",
              "2"
            },
            extra));
  }

  private static String[] concat(String[] base, String[] extra) {
    String[] all = Arrays.copyOf(base, base.length + extra.length);
    System.arraycopy(extra, 0, all, base.length, extra.length);
    return all;
  }

  /** Writes {@code lines} as a JSON-lines file (each line ended). @return {@code file} */
  public static Path jsonl(Path file, String... lines) throws IOException {
    return Files.writeString(file, String.join("\n", lines) + "\n");
  }

  /**
   * @return the {@code _summary.json} of the output {@code out}
   */
  public static JsonObject summary(Path out) throws IOException {
    return JsonParser.parseString(Files.readString(out.resolve("_summary.json"))).getAsJsonObject();
  }

  /**
   * @return every JSON line of the part files under {@code dir}
   */
  public static List<JsonObject> readJsonLines(Path dir) throws IOException {
    List<JsonObject> rows = new ArrayList<>();
    try (Stream<Path> s = Files.list(dir)) {
      for (Path p :
          s.filter(f -> f.getFileName().toString().startsWith("part-")).sorted().toList()) {
        for (String line : Files.readAllLines(p)) {
          if (!line.isBlank()) {
            rows.add(JsonParser.parseString(line).getAsJsonObject());
          }
        }
      }
    }
    return rows;
  }
}
