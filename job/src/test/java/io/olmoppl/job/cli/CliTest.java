package io.olmoppl.job.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.olmoppl.job.testing.SparkTestBase;
import io.olmoppl.testing.Refcases;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The command line: run errors stop before scoring with a clear message, a non-zero exit and no
 * output.
 */
class CliTest extends SparkTestBase {
  @TempDir Path tmp;

  Path input() throws Exception {
    Path in = tmp.resolve("in.jsonl");
    Files.writeString(in, "{\"text\":\"some text\",\"n\":3}\n");
    return in;
  }

  @Test
  void missingTextColumnIsARunError() throws Exception {
    Path out = tmp.resolve("out");
    Cli r = scoreCli(model(), input(), out, "--text-column", "body");
    assertEquals(1, r.code());
    assertTrue(r.err().contains("no column 'body'") && r.err().contains("--text-column"), r.err());
    assertFalse(Files.exists(out));
  }

  @Test
  void nonStringTextColumnIsARunError() throws Exception {
    Path out = tmp.resolve("out");
    Cli r = scoreCli(model(), input(), out, "--text-column", "n");
    assertEquals(1, r.code());
    assertTrue(r.err().contains("has type bigint, not string"), r.err());
    assertFalse(Files.exists(out));
  }

  @Test
  void existingOutputIsRefused() throws Exception {
    Path out = Files.createDirectories(tmp.resolve("exists"));
    Cli r = scoreCli(model(), input(), out);
    assertEquals(1, r.code());
    assertTrue(r.err().contains("already exists"), r.err());
  }

  @Test
  void badCheckpointFailsBeforeSpark() throws Exception {
    Path dir = Files.createDirectories(tmp.resolve("pickle"));
    Files.writeString(dir.resolve("config.json"), "{\"model_type\":\"olmo\",\"hidden_size\":32}");
    Files.write(dir.resolve("pytorch_model.bin"), new byte[] {(byte) 0x80, 2, 'c'});
    Path out = tmp.resolve("out");
    Cli r = scoreCli(dir.toString(), input(), out);
    assertEquals(1, r.code());
    assertTrue(r.err().contains("pickle") && r.err().contains("safetensors"), r.err());
    assertFalse(Files.exists(out));
  }

  @Test
  void badOptionsAreUsageErrors() throws Exception {
    String model = model();
    String in = input().toString();
    String out = tmp.resolve("out").toString();
    Cli unknown = cli("score", "--model", model, "--input", in, "--output", out, "--windw", "3");
    assertEquals(2, unknown.code());
    assertTrue(unknown.err().contains("unknown option --windw"), unknown.err());
    Cli stride =
        cli(
            "score",
            "--model",
            model,
            "--input",
            in,
            "--output",
            out,
            "--window",
            "8",
            "--stride",
            "9");
    assertEquals(2, stride.code());
    assertTrue(stride.err().contains("--stride 9 is larger than --window 8"), stride.err());
    Cli bos = cli("score", "--model", model, "--input", in, "--output", out, "--bos", "bos");
    assertEquals(2, bos.code());
    assertTrue(bos.err().contains("--bos must be auto, eos or none"), bos.err());
    Cli window = cli("score", "--model", model, "--input", in, "--output", out, "--window", "4096");
    assertEquals(2, window.code());
    assertTrue(window.err().contains("--allow-long-window"), window.err());
    assertFalse(Files.exists(Path.of(out)));
  }

  @Test
  void inspectShowsTiedGroupAndFingerprint() {
    Cli r =
        cli(
            "inspect",
            "--model",
            Refcases.dir("p02_hfolmo_tied_ffout_alias_bf16").toString(),
            "--json");
    assertEquals(0, r.code(), r.err());
    JsonObject j = JsonParser.parseString(r.out()).getAsJsonObject();
    JsonObject model = j.getAsJsonObject("model");
    assertEquals("hf_olmo", model.get("layout").getAsString());
    assertEquals(
        "[\"model.transformer.wte.weight\",\"model.transformer.ff_out.weight\"]",
        model
            .getAsJsonArray("tied_groups")
            .get(0)
            .getAsJsonObject()
            .getAsJsonArray("tensors")
            .toString());
    // 2 blocks of att_proj 144x48, attn_out 48x48, ff_proj 192x48, ff_out 48x96, plus wte 50304x48
    // once
    long expected = 2L * (144 * 48 + 48 * 48 + 192 * 48 + 48 * 96) + 50304L * 48;
    assertEquals(expected, j.get("parameters").getAsLong());
    assertEquals(expected * 2, j.getAsJsonObject("bytes_per_dtype").get("BF16").getAsLong());
    assertEquals(16, model.get("fingerprint").getAsString().length());
    Cli again =
        cli(
            "inspect",
            "--model",
            Refcases.dir("p02_hfolmo_tied_ffout_alias_bf16").toString(),
            "--json");
    assertEquals(r.out(), again.out(), "fingerprint and description are stable");
  }

  @Test
  void tyingConflictRefusedUnderStrictAndScoredUnderConfig() throws Exception {
    Path ckpt = tmp.resolve("conflict");
    Cli made = makeTinyCheckpoint("olmo", ckpt, "--tied", "--output-copy", "different");
    assertEquals(0, made.code(), made.err());
    Path out = tmp.resolve("out");
    Cli strict = scoreCli(ckpt.toString(), input(), out);
    assertEquals(1, strict.code());
    assertTrue(
        strict.err().contains("lm_head.weight")
            && strict.err().contains("model.embed_tokens.weight")
            && strict.err().contains("max abs difference")
            && strict.err().contains("tie_word_embeddings")
            && strict.err().contains("--tying config"),
        strict.err());
    assertFalse(Files.exists(out));
    Cli config =
        scoreCli(ckpt.toString(), input(), out, "--tying", "config", "--output-format", "json");
    assertEquals(0, config.code(), config.err());
    assertTrue(
        config.err().contains("warning") && config.err().contains("is ignored"), config.err());
    assertFalse(config.out().contains("warning"), "warnings go to stderr: " + config.out());
    assertEquals("ok", readJsonLines(out).get(0).get("ppl_status").getAsString());
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
}
