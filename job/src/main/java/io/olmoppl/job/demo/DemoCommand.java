package io.olmoppl.job.demo;

import com.google.gson.Gson;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.olmoppl.job.cli.Args;
import io.olmoppl.job.cli.Command;
import io.olmoppl.job.cli.UsageException;
import io.olmoppl.job.score.ScoreCommand;
import io.olmoppl.scoring.Perplexity;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.apache.commons.io.FileUtils;

/**
 * {@code olmo-ppl demo}: a tiny OLMo trained on King James Bible text (once, then cached: {@link
 * DemoModel}) scores held-out prose (the book of Ruth), the same words shuffled, random characters
 * and a few sample rows, on in-process Spark, and prints the perplexity of each source. Re-running
 * replaces the demo directory.
 */
public final class DemoCommand implements Command {
  static final String HELP =
      String.join(
          "\n",
          "usage: olmo-ppl demo [--dir DIR] [--master URL] [--cache DIR]",
          "",
          "Trains a tiny OLMo (hf_olmo layout, tied embedding, the OLMo-1 tokenizer) on King James Bible text bundled",
          "with olmo-ppl, on first use only (a few minutes on CPU; cached in CACHE, default ~/.cache/olmo-ppl). Then",
          "copies it to DIR/checkpoint, writes DIR/input.jsonl (the held-out book of Ruth, the same words shuffled,",
          "random characters, and sample rows), scores it into DIR/output (JSON lines and _summary.json) and prints",
          "perplexity by source. DIR defaults to ./olmo-ppl-demo and is replaced on each run.");
  private static final String MARKER = ".olmo-ppl-demo";

  /** Seed of the shuffled words and random characters. */
  private static final long EVAL_SEED = 1611;

  /** Per-source corpus figures over {@code ok} rows. */
  record SourceStats(String source, int documents, long tokens, double nll, long bytes) {
    double perplexity() {
      return Perplexity.perplexity(nll, tokens);
    }

    double bitsPerByte() {
      return Perplexity.bitsPerByte(nll, tokens, bytes);
    }
  }

  public DemoCommand() {}

  @Override
  public String name() {
    return "demo";
  }

  @Override
  public String oneLine() {
    return "[--dir DIR]                             train a tiny OLMo (once) and score prose vs noise";
  }

  @Override
  public String help() {
    return HELP;
  }

  @Override
  public int run(String[] argv, PrintStream out, PrintStream err) throws IOException {
    run(argv, out);
    return 0;
  }

  static void run(String[] argv, PrintStream out) throws IOException {
    run(argv, out, DemoTrainer.Spec.demo(), DemoCorpus.heldOut());
  }

  /**
   * @param spec the model to train (or take from the cache)
   * @param heldOut the held-out chapters to score, each with its two controls
   * @return the per-source figures printed
   */
  static List<SourceStats> run(
      String[] argv, PrintStream out, DemoTrainer.Spec spec, List<String> heldOut)
      throws IOException {
    Args a = Args.parse("demo", argv, 1, Set.of("dir", "master", "cache"), Set.of());
    Path dir = Path.of(a.get("dir", "olmo-ppl-demo")).toAbsolutePath();
    if (Files.exists(dir)) {
      if (!Files.exists(dir.resolve(MARKER))) {
        throw new UsageException(
            dir + " exists and was not made by 'olmo-ppl demo'; pass --dir NEW_DIR");
      }
      FileUtils.deleteDirectory(dir.toFile());
    }
    Path cache = a.get("cache") != null ? Path.of(a.get("cache")) : DemoModel.defaultCache();
    Path trained = DemoModel.ensure(cache, spec, out).dir();
    Files.createDirectories(dir);
    Files.writeString(dir.resolve(MARKER), "made by olmo-ppl demo\n");
    Path ckpt = dir.resolve("checkpoint");
    Files.createDirectories(ckpt);
    for (String f :
        List.of("config.json", "model.safetensors", "tokenizer.json", DemoModel.TRAINING_JSON)) {
      Files.copy(trained.resolve(f), ckpt.resolve(f));
    }
    Path input = dir.resolve("input.jsonl");
    writeInput(input, heldOut);
    out.println(
        "olmo-ppl: scoring "
            + input
            + " with the trained model (its embedding is one tensor, tied to the"
            + " output)");
    Path output = dir.resolve("output");
    ScoreCommand.main(
        new String[] {
          "score",
          "--model",
          ckpt.toString(),
          "--input",
          input.toString(),
          "--output",
          output.toString(),
          "--output-format",
          "json",
          "--master",
          a.get("master", "local[2]")
        },
        out,
        System.err);
    List<SourceStats> stats = bySource(output);
    out.println();
    out.println(table(stats));
    out.println(
        "prose: the book of Ruth (never trained on); shuffled: the same words in a random order; random:");
    out.println(
        "random characters, as many bytes as the prose. A model that learned English ranks them prose <");
    out.println(
        "shuffled < random. The sample rows (modern English, code, other languages) use many tokens the");
    out.println("King James Bible never does, which this model has never seen.");
    return stats;
  }

  /** The evaluation documents, then the bundled sample rows. */
  private static void writeInput(Path input, List<String> heldOut) throws IOException {
    Gson gson = new Gson();
    try (BufferedWriter w = Files.newBufferedWriter(input, StandardCharsets.UTF_8)) {
      int id = 1;
      for (DemoCorpus.Doc d : DemoCorpus.evaluation(heldOut, EVAL_SEED)) {
        JsonObject o = new JsonObject();
        o.addProperty("id", id++);
        o.addProperty("source", d.source());
        o.addProperty("text", d.text());
        w.write(gson.toJson(o));
        w.newLine();
      }
      try (InputStream in =
          DemoCommand.class.getResourceAsStream("/io/olmoppl/demo/sample.jsonl")) {
        for (String line : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
          if (!line.isBlank()) {
            JsonObject o = JsonParser.parseString(line).getAsJsonObject();
            o.addProperty("id", id++);
            w.write(gson.toJson(o));
            w.newLine();
          }
        }
      }
    }
  }

  /**
   * Reads the scored JSON lines and sums {@code ok} rows per source, in order of first appearance.
   */
  static List<SourceStats> bySource(Path output) throws IOException {
    Map<String, long[]> counts = new LinkedHashMap<>(); // documents, tokens, bytes
    Map<String, Double> nll = new LinkedHashMap<>();
    List<Path> parts;
    try (Stream<Path> s = Files.list(output)) {
      parts = s.filter(p -> p.getFileName().toString().startsWith("part-")).sorted().toList();
    }
    List<JsonObject> rows = new ArrayList<>();
    for (Path p : parts) {
      for (String line : Files.readAllLines(p, StandardCharsets.UTF_8)) {
        if (!line.isBlank()) {
          rows.add(JsonParser.parseString(line).getAsJsonObject());
        }
      }
    }
    rows.sort((x, y) -> Integer.compare(x.get("id").getAsInt(), y.get("id").getAsInt()));
    for (JsonObject r : rows) {
      if (!"ok".equals(r.get("ppl_status").getAsString())) {
        continue;
      }
      String source = r.get("source").getAsString();
      long[] c = counts.computeIfAbsent(source, k -> new long[3]);
      c[0]++;
      c[1] += r.get("ppl_tokens").getAsLong();
      JsonElement text = r.get("text");
      c[2] += text.getAsString().getBytes(StandardCharsets.UTF_8).length;
      nll.merge(source, r.get("ppl_nll").getAsDouble(), Double::sum);
    }
    List<SourceStats> out = new ArrayList<>();
    counts.forEach((k, c) -> out.add(new SourceStats(k, (int) c[0], c[1], nll.get(k), c[2])));
    return out;
  }

  static String table(List<SourceStats> stats) {
    StringBuilder b =
        new StringBuilder(
            String.format(
                Locale.ROOT,
                "%-14s %9s %7s %11s %10s%n",
                "source",
                "documents",
                "tokens",
                "perplexity",
                "bits/byte"));
    for (SourceStats s : stats) {
      b.append(
          String.format(
              Locale.ROOT,
              "%-14s %9d %7d %11.1f %10.3f%n",
              s.source(),
              s.documents(),
              s.tokens(),
              s.perplexity(),
              s.bitsPerByte()));
    }
    return b.toString().stripTrailing();
  }
}
