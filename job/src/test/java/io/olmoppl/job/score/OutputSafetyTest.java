package io.olmoppl.job.score;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import io.olmoppl.job.testing.SparkTestBase;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import java.util.zip.GZIPOutputStream;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Outputs are replaced, never destroyed: a failed overwrite leaves the old output; a path that
 * reaches the output another way (a link) is refused; a second run on one output fails without
 * touching the first; {@code --rejected} inside {@code --output} is refused before scoring; a
 * failed task prints one message and logs its trace; partitions are capped at the row count; rows
 * carried by {@code --previous} count as progress.
 */
class OutputSafetyTest extends SparkTestBase {
  @TempDir Path tmp;

  Path jsonl(String name, String prefix, int rows) throws Exception {
    Path p = tmp.resolve(name);
    Files.write(
        p,
        IntStream.range(0, rows)
            .mapToObj(i -> "{\"text\":\"" + prefix + " document number " + i + "\"}")
            .toList());
    return p;
  }

  /** A gzip of text lines cut in the middle: reading it fails inside a Spark task. */
  Path truncatedGz() throws Exception {
    return truncatedGz(tmp);
  }

  static Path truncatedGz(Path tmp) throws Exception {
    Path full = tmp.resolve("full.txt.gz");
    try (OutputStream o = new GZIPOutputStream(Files.newOutputStream(full))) {
      for (int i = 0; i < 20_000; i++) {
        o.write(("line " + i + " of a text that was cut off " + (i * 7919L) + "\n").getBytes());
      }
    }
    byte[] b = Files.readAllBytes(full);
    Path cut = tmp.resolve("cut.txt.gz");
    Files.write(cut, java.util.Arrays.copyOf(b, b.length / 2));
    Files.delete(full);
    return cut;
  }

  /**
   * @return every file under {@code dir} and its bytes
   */
  static Map<String, byte[]> snapshot(Path dir) throws Exception {
    Map<String, byte[]> m = new TreeMap<>();
    try (Stream<Path> s = Files.walk(dir)) {
      for (Path f : s.filter(Files::isRegularFile).toList()) {
        m.put(dir.relativize(f).toString(), Files.readAllBytes(f));
      }
    }
    return m;
  }

  static void assertSame(Map<String, byte[]> before, Path dir) throws Exception {
    Map<String, byte[]> after = snapshot(dir);
    assertEquals(before.keySet(), after.keySet(), "the old output keeps every file");
    for (String k : before.keySet()) {
      assertArrayEquals(before.get(k), after.get(k), k);
    }
  }

  /** Nothing of a run is left beside its output: no lock, no unfinished folder. */
  static void assertNoLeftovers(Path output) throws Exception {
    try (Stream<Path> s = Files.list(output.toAbsolutePath().getParent())) {
      List<String> left =
          s.map(p -> p.getFileName().toString())
              .filter(n -> n.startsWith("." + output.getFileName() + ".olmo-ppl"))
              .toList();
      assertEquals(List.of(), left);
    }
  }

  Cli scoreJson(String... args) {
    List<String> a =
        new ArrayList<>(List.of("score", "--model", model(), "--output-format", "json"));
    a.addAll(List.of(args));
    return cli(a.toArray(String[]::new));
  }

  static Set<String> texts(Path out) throws Exception {
    return readJsonLines(out).stream()
        .map(r -> r.get("text").getAsString())
        .collect(Collectors.toSet());
  }

  @Test
  void anOverwriteThatFailsLeavesTheOldOutputComplete() throws Exception {
    Path out = tmp.resolve("out");
    Cli first = scoreJson("--input", jsonl("in.jsonl", "old", 3).toString(), "--output", "" + out);
    assertEquals(0, first.code(), first.err());
    Map<String, byte[]> before = snapshot(out);
    assertTrue(before.containsKey(Output.MARKER));

    // the input is read only while scoring (text, no progress count): the run fails in a task
    Cli failed =
        scoreJson(
            "--input",
            truncatedGz().toString(),
            "--input-format",
            "text",
            "--progress",
            "off",
            "--output",
            out.toString(),
            "--mode",
            "overwrite");
    assertEquals(1, failed.code(), failed.err());
    assertSame(before, out);
    assertNoLeftovers(out);
  }

  @Test
  void anInputReachedThroughALinkIntoTheOutputIsRefusedAndSurvives() throws Exception {
    Path out = tmp.resolve("out");
    Cli first = scoreJson("--input", jsonl("in.jsonl", "kept", 3).toString(), "--output", "" + out);
    assertEquals(0, first.code(), first.err());
    Map<String, byte[]> before = snapshot(out);

    Path link = Files.createSymbolicLink(tmp.resolve("link-to-out"), out);
    Path dirWithLink = Files.createDirectories(tmp.resolve("indir"));
    String part;
    try (Stream<Path> s = Files.list(out)) {
      part =
          s.map(p -> p.getFileName().toString())
              .filter(n -> n.startsWith("part-"))
              .findFirst()
              .orElseThrow();
    }
    Files.createSymbolicLink(dirWithLink.resolve("rows.txt"), out.resolve(part));
    // read as text (each JSON line a document): nothing but the paths can stop the run
    for (Path input : List.of(link, link.resolve(part), dirWithLink)) {
      Cli r =
          scoreJson(
              "--input",
              input.toString(),
              "--input-format",
              "text",
              "--output",
              out.toString(),
              "--mode",
              "overwrite");
      assertEquals(1, r.code(), input + ": " + r.err());
      assertTrue(r.err().contains("--output " + out + " overlaps --input " + input), r.err());
      assertTrue(r.err().lines().count() <= 2, r.err());
      assertSame(before, out);
    }
    assertNoLeftovers(out);
  }

  @Test
  void aSecondRunOnTheSameOutputFailsWithoutTouchingTheFirst() throws Exception {
    Path out = tmp.resolve("out");
    Cli earlier =
        scoreJson("--input", jsonl("c.jsonl", "earlier", 2).toString(), "--output", "" + out);
    assertEquals(0, earlier.code(), earlier.err());
    Path a = jsonl("a.jsonl", "first", 40);
    Path b = jsonl("b.jsonl", "second", 4);
    for (String mode : List.of("overwrite", "error")) {
      Path target = mode.equals("error") ? tmp.resolve("fresh") : out;
      Path lock = target.getParent().resolve("." + target.getFileName() + ".olmo-ppl.lock");
      CompletableFuture<Cli> first =
          CompletableFuture.supplyAsync(
              () ->
                  scoreJson(
                      "--input", a.toString(), "--output", target.toString(), "--mode", mode));
      while (!Files.exists(lock) && !first.isDone()) {
        Thread.sleep(2);
      }
      assertFalse(first.isDone(), "the first run claims its output while it runs");
      Cli second =
          scoreJson("--input", b.toString(), "--output", target.toString(), "--mode", mode);
      Cli done = first.get(5, TimeUnit.MINUTES);
      assertEquals(0, done.code(), done.err());
      assertEquals(1, second.code(), second.err());
      assertTrue(
          second.err().contains("is being written by another olmo-ppl run")
              && second.err().contains(lock.toString())
              && second.err().contains("pid " + ProcessHandle.current().pid())
              && second.err().contains("delete the lock file"),
          second.err());
      assertTrue(second.err().lines().count() <= 2, second.err());
      assertEquals(
          IntStream.range(0, 40)
              .mapToObj(i -> "first document number " + i)
              .collect(Collectors.toSet()),
          texts(target),
          "the output holds the first run's rows, and only those");
      assertTrue(Files.exists(target.resolve(Output.MARKER)));
      assertNoLeftovers(target);
    }
  }

  @Test
  void rejectedInsideTheOutputIsRefusedBeforeScoring() throws Exception {
    Path in = jsonl("in.jsonl", "some", 3);
    Path out = tmp.resolve("out");
    Path viaLink = Files.createSymbolicLink(tmp.resolve("same-tmp"), tmp);
    for (Path rejected :
        List.of(out.resolve("rejected"), viaLink.resolve("out").resolve("rejected"))) {
      Cli r =
          scoreJson(
              "--input",
              in.toString(),
              "--output",
              out.toString(),
              "--max-perplexity",
              "1e30",
              "--rejected",
              rejected.toString());
      assertEquals(1, r.code(), r.err());
      assertTrue(
          r.err().contains("--rejected " + rejected + " is inside --output " + out), r.err());
      assertFalse(Files.exists(out), "refused before anything is written");
      assertNoLeftovers(out);
    }
    Cli r =
        scoreJson(
            "--input",
            in.toString(),
            "--output",
            tmp.resolve("kept").toString(),
            "--max-perplexity",
            "1e30",
            "--rejected",
            viaLink.resolve("kept").toString());
    assertEquals(1, r.code(), r.err());
    assertTrue(
        r.err().contains(" is the same place as ")
            && r.err().contains("--output " + tmp.resolve("kept"))
            && r.err().contains("--rejected " + viaLink.resolve("kept")),
        r.err());
  }

  static final Pattern LOG = Pattern.compile("full trace is in (\\S+);");

  @Test
  void aFailedTaskPrintsOneMessageAndLogsItsTrace() throws Exception {
    Cli r =
        scoreJson(
            "--input",
            truncatedGz().toString(),
            "--input-format",
            "text",
            "--progress",
            "off",
            "--output",
            tmp.resolve("out").toString());
    assertEquals(1, r.code(), r.err());
    assertEquals(2, r.err().lines().count(), r.err());
    String message = r.err().lines().findFirst().orElseThrow();
    assertTrue(
        message.startsWith("olmo-ppl: error: ")
            && message.contains("cut.txt.gz")
            && message.contains("java.io.EOFException: Unexpected end of input stream"),
        message);
    assertFalse(r.err().contains("\tat "), r.err());
    Matcher m = LOG.matcher(r.err());
    assertTrue(m.find(), r.err());
    Path log = Path.of(m.group(1));
    String trace = Files.readString(log);
    Files.delete(log);
    assertTrue(trace.contains("java.io.EOFException") && trace.contains("\tat "), trace);
    assertNoLeftovers(tmp.resolve("out"));
  }

  @Test
  void partitionsAreCappedAtTheRowCount() throws Exception {
    AtomicLong tasks = new AtomicLong();
    SparkListener count =
        new SparkListener() {
          @Override
          public void onTaskEnd(SparkListenerTaskEnd e) {
            tasks.incrementAndGet();
          }
        };
    spark.sparkContext().addSparkListener(count);
    Path out = tmp.resolve("out");
    Cli r;
    try {
      r =
          scoreJson(
              "--input",
              jsonl("in.jsonl", "five", 5).toString(),
              "--output",
              out.toString(),
              "--partitions",
              "400");
    } finally {
      spark.sparkContext().removeSparkListener(count);
    }
    assertEquals(0, r.code(), r.err());
    assertTrue(r.err().contains("--partitions 400 is more than the 5 input rows"), r.err());
    assertTrue(tasks.get() < 400, "tasks: " + tasks.get());
    try (Stream<Path> s = Files.list(out)) {
      assertTrue(s.filter(p -> p.getFileName().toString().startsWith("part-")).count() <= 5);
    }
    assertEquals(5, readJsonLines(out).size());
  }

  @Test
  void rowsCarriedFromPreviousCountAsDone() throws Exception {
    Path in = jsonl("in.jsonl", "carried", 3);
    Path first = tmp.resolve("first");
    assertEquals(0, scoreJson("--input", in.toString(), "--output", first.toString()).code());
    Cli again =
        scoreJson(
            "--input",
            in.toString(),
            "--output",
            tmp.resolve("again").toString(),
            "--previous",
            first.toString(),
            "--progress",
            "log");
    assertEquals(0, again.code(), again.err());
    String last =
        again.err().lines().filter(l -> l.contains(" documents, ")).reduce((x, y) -> y).orElse("");
    assertTrue(last.contains("3/3 documents") && last.contains("100.0%"), again.err());
    JsonObject prev =
        com.google.gson.JsonParser.parseString(
                Files.readString(tmp.resolve("again").resolve("_summary.json")))
            .getAsJsonObject()
            .getAsJsonObject("previous");
    assertNotNull(prev);
    assertEquals(3, prev.get("carried").getAsLong());
  }
}
