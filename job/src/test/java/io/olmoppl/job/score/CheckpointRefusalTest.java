package io.olmoppl.job.score;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.olmoppl.checkpoint.CheckpointLayout;
import io.olmoppl.checkpoint.writer.CheckpointMaker;
import io.olmoppl.checkpoint.writer.SafetensorsWriter;
import io.olmoppl.checkpoint.writer.SafetensorsWriter.Tensor;
import io.olmoppl.job.testing.SparkTestBase;
import io.olmoppl.runtime.TorchEngine;
import io.olmoppl.testing.Refcases;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Checkpoints and devices that cannot score are refused before scoring with the project's message
 * (NaN weights, ids or a tokenizer that would fail on the executors, a GPU that is not there), or
 * their rows are marked, never ok.
 */
class CheckpointRefusalTest extends SparkTestBase {
  @TempDir Path tmp;

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
    Path in =
        jsonl(tmp.resolve("in.jsonl"), "{\"text\":\"a few words of text\"}", "{\"text\":\"\"}");
    Path out = tmp.resolve("out");
    Cli refused = scoreCli(ckpt.toString(), in, out);
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
        scoreCli(ckpt.toString(), in, out, "--scan-weights", "false", "--output-format", "json");
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
            jsonl(tmp.resolve("in.jsonl"), "{\"text\":\"x\"}").toString(),
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
    Assumptions.assumeTrue(TorchEngine.get().getGpuCount() == 0, "this machine has a GPU");
    Cli r =
        cli(
            "score",
            "--model",
            model(),
            "--input",
            jsonl(tmp.resolve("in.jsonl"), "{\"text\":\"x\"}").toString(),
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
            jsonl(tmp.resolve("in2.jsonl"), "{\"text\":\"x\"}").toString(),
            "--output",
            tmp.resolve("out").toString(),
            "--device",
            "gpu");
    assertEquals(1, verbose.code());
    assertTrue(verbose.err().contains("\tat "), "--verbose shows the trace: " + verbose.err());
  }
}
