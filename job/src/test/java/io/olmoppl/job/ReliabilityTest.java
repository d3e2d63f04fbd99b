package io.olmoppl.job;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.olmoppl.Refcases;
import io.olmoppl.checkpoint.CheckpointLayout;
import io.olmoppl.checkpoint.CheckpointMaker;
import io.olmoppl.checkpoint.SafetensorsWriter;
import io.olmoppl.checkpoint.SafetensorsWriter.Tensor;
import io.olmoppl.job.cli.Args;
import io.olmoppl.job.score.Formats;
import io.olmoppl.job.score.Output;
import io.olmoppl.job.score.Request;
import io.olmoppl.job.score.ScoreCommand;
import io.olmoppl.job.testing.SparkTestBase;
import io.olmoppl.model.OlmoModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs that used to exit 0 with wrong or empty answers, or fail late with long traces: each now
 * stops before scoring with the project's message, or marks the affected rows; outputs never look
 * complete after a crash; re-runs carry unchanged rows over.
 */
class ReliabilityTest extends SparkTestBase {
  @TempDir Path tmp;

  static String model() {
    return Refcases.dir("p01_olmo_tied_f32").toString();
  }

  Path jsonl(String name, String... lines) throws Exception {
    Path p = tmp.resolve(name);
    Files.writeString(p, String.join("\n", lines) + "\n");
    return p;
  }

  static JsonObject summary(Path out) throws Exception {
    return JsonParser.parseString(Files.readString(out.resolve("_summary.json"))).getAsJsonObject();
  }

  @Test
  void mixedDirectoryIsRefusedNamingTheFiles() throws Exception {
    Path dir = Files.createDirectories(tmp.resolve("mixed"));
    Files.writeString(dir.resolve("a.jsonl"), "{\"text\":\"one\"}\n");
    Files.writeString(dir.resolve("b.csv"), "text\ntwo\n");
    Files.writeString(dir.resolve("c.txt"), "three\n");
    Path out = tmp.resolve("out");
    Cli r = cli("score", "--model", model(), "--input", dir.toString(), "--output", out.toString());
    assertEquals(1, r.code(), r.err());
    assertTrue(
        r.err().contains("mixes files")
            && r.err().contains("a.jsonl")
            && r.err().contains("b.csv")
            && r.err().contains("c.txt"),
        r.err());
    assertFalse(Files.exists(out));
  }

  @Test
  void unwritableOutputIsFoundBeforeScoring() throws Exception {
    Path file = Files.writeString(tmp.resolve("plain-file"), "x");
    Cli r =
        cli(
            "score",
            "--model",
            model(),
            "--input",
            jsonl("in.jsonl", "{\"text\":\"a b c\"}").toString(),
            "--output",
            file.resolve("out").toString());
    assertEquals(1, r.code(), r.err());
    assertTrue(
        r.err().contains("cannot be written") && r.err().contains("before any scoring"), r.err());
    assertTrue(r.err().lines().count() <= 3, "no trace: " + r.err());
  }

  /** A copy of a small olmo checkpoint with one weight set to NaN. */
  Path nanCheckpoint() throws Exception {
    CheckpointMaker maker =
        CheckpointMaker.small(CheckpointLayout.OLMO)
            .withDims(16, 1, 4, 2, 24, 64)
            .withVocabRows(50304);
    Path dir = tmp.resolve("nan-ckpt");
    maker.write(dir, Refcases.dir("p01_olmo_tied_f32").resolve("tokenizer.json"));
    List<Tensor> t = new ArrayList<>();
    for (Tensor x : maker.tensors()) {
      if (x.name().equals("model.layers.0.mlp.up_proj.weight")) {
        float[] v = x.values().clone();
        v[0] = Float.NaN;
        x = new Tensor(x.name(), x.dtype(), x.shape(), v);
      }
      t.add(x);
    }
    SafetensorsWriter.write(dir.resolve("model.safetensors"), t);
    return dir;
  }

  @Test
  void nanWeightsAreRefusedOrGiveNonFiniteRowsNeverOk() throws Exception {
    Path ckpt = nanCheckpoint();
    Path in = jsonl("in.jsonl", "{\"text\":\"a few words of text\"}", "{\"text\":\"\"}");
    Path out = tmp.resolve("out");
    Cli refused =
        cli(
            "score",
            "--model",
            ckpt.toString(),
            "--input",
            in.toString(),
            "--output",
            out.toString());
    assertEquals(1, refused.code());
    assertTrue(
        refused.err().contains("model.layers.0.mlp.up_proj.weight")
            && refused.err().contains("NaN"),
        refused.err());
    assertFalse(Files.exists(out));
    Cli inspect = cli("inspect", "--model", ckpt.toString());
    assertEquals(1, inspect.code());
    assertTrue(inspect.err().contains("model.layers.0.mlp.up_proj.weight"), inspect.err());

    Cli scored =
        cli(
            "score",
            "--model",
            ckpt.toString(),
            "--input",
            in.toString(),
            "--output",
            out.toString(),
            "--scan-weights",
            "false",
            "--output-format",
            "json");
    assertEquals(0, scored.code(), scored.err());
    List<JsonObject> rows = readJsonLines(out);
    assertEquals("non_finite", rows.get(0).get("ppl_status").getAsString());
    assertEquals("empty", rows.get(1).get("ppl_status").getAsString());
    JsonObject s = summary(out);
    assertEquals(1, s.getAsJsonObject("status").get("non_finite").getAsInt());
    assertEquals(
        0, s.get("tokens").getAsLong(), "non-finite documents are left out of the corpus figures");
    assertTrue(s.get("perplexity").isJsonNull());
  }

  @Test
  void idsAndTokenizerThatFailOnExecutorsAreRefusedByInspectAndScore() throws Exception {
    Path dir = tmp.resolve("eos");
    CheckpointMaker.small(CheckpointLayout.OLMO)
        .withDims(16, 1, 4, 2, 24, 64)
        .withVocabRows(50304)
        .write(dir, Refcases.dir("p01_olmo_tied_f32").resolve("tokenizer.json"));
    Path cfg = dir.resolve("config.json");
    JsonObject j = JsonParser.parseString(Files.readString(cfg)).getAsJsonObject();
    j.addProperty("eos_token_id", 60000);
    Files.writeString(cfg, j.toString());
    Cli inspect = cli("inspect", "--model", dir.toString());
    assertEquals(1, inspect.code());
    assertTrue(inspect.err().contains("eos_token_id 60000"), inspect.err());
    Cli score =
        cli(
            "score",
            "--model",
            dir.toString(),
            "--input",
            jsonl("in.jsonl", "{\"text\":\"x\"}").toString(),
            "--output",
            tmp.resolve("out").toString());
    assertEquals(1, score.code());
    assertTrue(score.err().contains("eos_token_id 60000"), score.err());

    j.addProperty("eos_token_id", 50279);
    Files.writeString(cfg, j.toString());
    Files.writeString(dir.resolve("tokenizer.json"), "{}");
    Cli tok = cli("inspect", "--model", dir.toString());
    assertEquals(1, tok.code());
    assertTrue(
        tok.err().contains("tokenizer.json") && tok.err().contains("no \"model\""), tok.err());
  }

  @Test
  void gpuOnAMachineWithoutOneIsOneMessageNoTrace() throws Exception {
    Assumptions.assumeTrue(OlmoModel.engine().getGpuCount() == 0, "this machine has a GPU");
    Cli r =
        cli(
            "score",
            "--model",
            model(),
            "--input",
            jsonl("in.jsonl", "{\"text\":\"x\"}").toString(),
            "--output",
            tmp.resolve("out").toString(),
            "--device",
            "gpu");
    assertEquals(1, r.code());
    assertTrue(r.err().contains("device gpu") && r.err().contains("no GPU"), r.err());
    assertFalse(r.err().contains("\tat "), "no stack trace without --verbose: " + r.err());
    Cli verbose =
        cli(
            "--verbose",
            "score",
            "--model",
            model(),
            "--input",
            jsonl("in2.jsonl", "{\"text\":\"x\"}").toString(),
            "--output",
            tmp.resolve("out").toString(),
            "--device",
            "gpu");
    assertEquals(1, verbose.code());
    assertTrue(verbose.err().contains("\tat "), "--verbose shows the trace: " + verbose.err());
  }

  @Test
  void projectMessageIsFoundInsideSparkExceptions() {
    var inner = new io.olmoppl.checkpoint.CheckpointException("the real reason");
    var wrapped =
        new org.apache.spark.SparkException("Job aborted due to stage failure: ...\n\tat x", inner);
    assertEquals("the real reason", Main.message(new RuntimeException("outer", wrapped)));
    assertEquals("first line", Main.message(new RuntimeException("first line\nsecond")));
  }

  @Test
  void malformedJsonLinesGetTheirOwnStatusOrStopTheRun() throws Exception {
    Path in = jsonl("in.jsonl", "{\"text\":\"good line\"}", "{\"text\": broken", "{\"other\":1}");
    Path out = tmp.resolve("out");
    Cli r =
        cli(
            "score",
            "--model",
            model(),
            "--input",
            in.toString(),
            "--output",
            out.toString(),
            "--output-format",
            "json");
    assertEquals(0, r.code(), r.err());
    Map<String, Integer> byStatus = new HashMap<>();
    for (JsonObject row : readJsonLines(out)) {
      byStatus.merge(row.get("ppl_status").getAsString(), 1, Integer::sum);
    }
    assertEquals(Map.of("ok", 1, "malformed", 1, "null_text", 1), byStatus);
    assertEquals(1, summary(out).getAsJsonObject("status").get("malformed").getAsInt());
    Path out2 = tmp.resolve("out2");
    Cli fail =
        cli(
            "score",
            "--model",
            model(),
            "--input",
            in.toString(),
            "--output",
            out2.toString(),
            "--on-malformed",
            "fail");
    assertEquals(1, fail.code());
    assertTrue(
        fail.err().contains("1 malformed JSON line") && fail.err().contains("broken"), fail.err());
    assertFalse(Files.exists(out2));
  }

  @Test
  void emptyInputSaysSo() throws Exception {
    Path in = Files.writeString(tmp.resolve("empty.jsonl"), "");
    Cli r =
        cli(
            "score",
            "--model",
            model(),
            "--input",
            in.toString(),
            "--output",
            tmp.resolve("out").toString());
    assertEquals(1, r.code());
    assertTrue(r.err().contains("the input is empty"), r.err());
    assertFalse(r.err().contains("--text-column"), r.err());
  }

  @Test
  void outOfRangeNumbersAreNotCalledFractions() throws Exception {
    Cli r =
        cli(
            "score",
            "--model",
            model(),
            "--input",
            "x",
            "--output",
            "y",
            "--batch-tokens",
            "99999999999");
    assertEquals(2, r.code());
    assertTrue(r.err().contains("out of range") && !r.err().contains("whole number"), r.err());
  }

  @Test
  void stampChangesWithEverythingThatChangesTheNumbers() throws Exception {
    Path ckpt = tmp.resolve("conflict");
    assertEquals(
        0,
        cli(
                "make-checkpoint",
                "--layout",
                "olmo",
                "--out",
                ckpt.toString(),
                "--hidden",
                "16",
                "--heads",
                "2",
                "--tied",
                "--output-copy",
                "different")
            .code());
    Path in = jsonl("in.jsonl", "{\"text\":\"the same words every time\"}");
    Map<String, String> stamps = new HashMap<>();
    Map<String, Double> nll = new HashMap<>();
    String[][] variants = {
      {"--tying", "config"},
      {"--tying", "checkpoint"},
      {"--tying", "config", "--window", "4"},
      {"--tying", "config", "--window", "4", "--stride", "2"},
      {"--tying", "config", "--bos", "none"},
      {"--tying", "config", "--batch-tokens", "7"}
    };
    for (int i = 0; i < variants.length; i++) {
      Path out = tmp.resolve("out" + i);
      List<String> a =
          new ArrayList<>(
              List.of(
                  "score",
                  "--model",
                  ckpt.toString(),
                  "--input",
                  in.toString(),
                  "--output",
                  out.toString(),
                  "--output-format",
                  "json"));
      a.addAll(List.of(variants[i]));
      Cli r = cli(a.toArray(String[]::new));
      assertEquals(0, r.code(), r.err());
      JsonObject row = readJsonLines(out).get(0);
      stamps.put(String.join(" ", variants[i]), row.get("ppl_model").getAsString());
      nll.put(String.join(" ", variants[i]), row.get("ppl_nll").getAsDouble());
    }
    assertNotEquals(
        nll.get("--tying config"),
        nll.get("--tying checkpoint"),
        "the two rules give other numbers");
    // every setting that changes the numbers changes the stamp; the batch size changes neither
    assertEquals(5, new java.util.HashSet<>(stamps.values()).size(), stamps.toString());
    assertEquals(stamps.get("--tying config"), stamps.get("--tying config --batch-tokens 7"));
    assertTrue(
        stamps
            .get("--tying config")
            .startsWith(
                summary(tmp.resolve("out0"))
                    .getAsJsonObject("model")
                    .get("fingerprint")
                    .getAsString()),
        "the stamp starts with the checkpoint fingerprint");
  }

  @Test
  void outputIsMarkedCompleteLastAndModeDecidesAboutAnExistingOne() throws Exception {
    Path in = jsonl("in.jsonl", "{\"text\":\"alpha beta\"}", "{\"text\":\"gamma\"}");
    // the rows alone, as a crash right after writing them would leave them: no success marker
    Path rowsOnly = tmp.resolve("rows-only");
    Request req =
        Request.from(
            Args.parse(
                "score",
                new String[] {
                  "score",
                  "--model",
                  model(),
                  "--input",
                  in.toString(),
                  "--output",
                  rowsOnly.toString(),
                  "--output-format",
                  "json"
                },
                1,
                ScoreCommand.OPTIONS,
                ScoreCommand.FLAGS));
    Formats.write(spark.read().json(in.toString()), req, req.output());
    assertTrue(Files.exists(rowsOnly.resolve("part-00000-" + "x").getParent()));
    assertFalse(
        Files.exists(rowsOnly.resolve(Output.MARKER)),
        "rows without the summary do not look complete");
    Cli again =
        cli("score", "--model", model(), "--input", in.toString(), "--output", rowsOnly.toString());
    assertEquals(1, again.code());
    assertTrue(
        again.err().contains("already exists")
            && again.err().contains("did not finish")
            && again.err().contains("--mode overwrite"),
        again.err());

    Cli overwrite =
        cli(
            "score",
            "--model",
            model(),
            "--input",
            in.toString(),
            "--output",
            rowsOnly.toString(),
            "--mode",
            "overwrite",
            "--output-format",
            "json");
    assertEquals(0, overwrite.code(), overwrite.err());
    assertTrue(
        Files.exists(rowsOnly.resolve("_summary.json"))
            && Files.exists(rowsOnly.resolve(Output.MARKER)));
    assertTrue(
        Files.getLastModifiedTime(rowsOnly.resolve(Output.MARKER))
                .compareTo(Files.getLastModifiedTime(rowsOnly.resolve("_summary.json")))
            >= 0,
        "the marker comes last");
    assertEquals(2, readJsonLines(rowsOnly).size());

    Cli overInput =
        cli(
            "score",
            "--model",
            model(),
            "--input",
            in.toString(),
            "--output",
            in.toString(),
            "--mode",
            "overwrite");
    assertEquals(1, overInput.code());
    assertTrue(overInput.err().contains("overlaps"), overInput.err());
    assertTrue(Files.exists(in), "the input is never removed");
    Cli badMode =
        cli(
            "score",
            "--model",
            model(),
            "--input",
            in.toString(),
            "--output",
            "x",
            "--mode",
            "append");
    assertEquals(2, badMode.code());
  }

  static Map<String, JsonObject> byText(Path out) throws Exception {
    Map<String, JsonObject> m = new HashMap<>();
    for (JsonObject r : readJsonLines(out)) {
      assertEquals(null, m.put(r.get("text").getAsString(), r), "every row once");
    }
    return m;
  }

  @Test
  void rerunCarriesUnchangedRowsAndScoresNewAndEditedOnes() throws Exception {
    Path in1 =
        jsonl(
            "in1.jsonl",
            "{\"id\":1,\"text\":\"kept the same\"}",
            "{\"id\":2,\"text\":\"will be edited\"}",
            "{\"id\":3,\"text\":\"will be removed\"}");
    Path out1 = tmp.resolve("out1");
    assertEquals(
        0,
        cli(
                "score",
                "--model",
                model(),
                "--input",
                in1.toString(),
                "--output",
                out1.toString(),
                "--output-format",
                "json")
            .code());
    // mark the carried row's earlier score: a carried row keeps it, a re-scored row would not
    Path part =
        Files.list(out1)
            .filter(
                p ->
                    p.getFileName().toString().startsWith("part-")
                        && p.toString().endsWith(".json"))
            .filter(
                p -> {
                  try {
                    return Files.readString(p).contains("kept the same");
                  } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                  }
                })
            .findFirst()
            .orElseThrow();
    String body = Files.readString(part);
    JsonObject kept = byText(out1).get("kept the same");
    Files.writeString(
        part,
        body.replace("\"ppl_nll\":" + kept.get("ppl_nll").getAsString(), "\"ppl_nll\":12345.5"));
    Files.deleteIfExists(part.resolveSibling("." + part.getFileName() + ".crc"));

    Path in2 =
        jsonl(
            "in2.jsonl",
            "{\"id\":1,\"text\":\"kept the same\"}",
            "{\"id\":2,\"text\":\"was edited\"}",
            "{\"id\":4,\"text\":\"is new\"}");
    Path out2 = tmp.resolve("out2");
    Cli r =
        cli(
            "score",
            "--model",
            model(),
            "--input",
            in2.toString(),
            "--output",
            out2.toString(),
            "--output-format",
            "json",
            "--previous",
            out1.toString());
    assertEquals(0, r.code(), r.err());
    Map<String, JsonObject> rows = byText(out2);
    assertEquals(java.util.Set.of("kept the same", "was edited", "is new"), rows.keySet());
    assertEquals(
        12345.5, rows.get("kept the same").get("ppl_nll").getAsDouble(), "carried over unchanged");
    assertEquals(
        kept.get("ppl_tokens").getAsInt(), rows.get("kept the same").get("ppl_tokens").getAsInt());
    assertEquals("ok", rows.get("was edited").get("ppl_status").getAsString());
    assertNotEquals(12345.5, rows.get("is new").get("ppl_nll").getAsDouble());
    JsonObject prev = summary(out2).getAsJsonObject("previous");
    assertEquals(1, prev.get("carried").getAsLong());
    assertEquals(2, prev.get("scored").getAsLong());

    // keyed by id: the edited row (same id, new text) is scored again; other settings re-score
    // everything
    Path out3 = tmp.resolve("out3");
    assertEquals(
        0,
        cli(
                "score",
                "--model",
                model(),
                "--input",
                in2.toString(),
                "--output",
                out3.toString(),
                "--output-format",
                "json",
                "--previous",
                out2.toString(),
                "--id-column",
                "id")
            .code());
    assertEquals(12345.5, byText(out3).get("kept the same").get("ppl_nll").getAsDouble());
    assertEquals(3, summary(out3).getAsJsonObject("previous").get("carried").getAsLong());
    Path out4 = tmp.resolve("out4");
    assertEquals(
        0,
        cli(
                "score",
                "--model",
                model(),
                "--input",
                in2.toString(),
                "--output",
                out4.toString(),
                "--output-format",
                "json",
                "--previous",
                out2.toString(),
                "--window",
                "8")
            .code());
    assertEquals(0, summary(out4).getAsJsonObject("previous").get("carried").getAsLong());
    assertNotEquals(12345.5, byText(out4).get("kept the same").get("ppl_nll").getAsDouble());
  }
}
