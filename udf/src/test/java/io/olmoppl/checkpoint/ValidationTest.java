package io.olmoppl.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.gson.JsonPrimitive;
import io.olmoppl.batching.ScoringEngine;
import io.olmoppl.checkpoint.writer.CheckpointMaker;
import io.olmoppl.checkpoint.writer.SafetensorsWriter;
import io.olmoppl.checkpoint.writer.SafetensorsWriter.Tensor;
import io.olmoppl.model.OlmoModel;
import io.olmoppl.model.Precision;
import io.olmoppl.scoring.DocumentScore;
import io.olmoppl.scoring.PerplexityScorer;
import io.olmoppl.scoring.ScoringOptions;
import io.olmoppl.scoring.Status;
import io.olmoppl.testing.Refcases;
import io.olmoppl.tokenizer.OlmoTokenizer;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Values that used to pass validation and give wrong answers or crash later: config ranges, ids
 * beyond the embedding, tokenizers without a model, non-regular weight files, overflowing shapes,
 * NaN weights, windows beyond what one attention tensor can hold.
 */
class ValidationTest {
  private static final CheckpointMaker MAKER =
      CheckpointMaker.small(CheckpointLayout.OLMO)
          .withDims(16, 1, 4, 2, 24, 32)
          .withVocabRows(50304)
          .withSeed(7);

  @TempDir Path tmp;

  @BeforeAll
  static void configure() {
    io.olmoppl.runtime.DjlSettings.configure();
  }

  private Path valid(String name) throws IOException {
    Path dir = tmp.resolve(name);
    MAKER.write(dir, Refcases.dir("p01_olmo_tied_f32").resolve("tokenizer.json"));
    return dir;
  }

  private Path withConfig(String name, Consumer<JsonObject> edit) throws IOException {
    Path dir = valid(name);
    Path cfg = dir.resolve("config.json");
    JsonObject j = JsonParser.parseString(Files.readString(cfg)).getAsJsonObject();
    edit.accept(j);
    Files.writeString(cfg, j.toString());
    return dir;
  }

  private static String refused(Path dir) {
    return assertThrows(CheckpointException.class, () -> Checkpoint.open(dir, TyingRule.STRICT))
        .getMessage();
  }

  private static void assertMentions(String message, String... parts) {
    for (String p : parts) {
      assertTrue(message.contains(p), "message should mention '" + p + "': " + message);
    }
  }

  @Test
  void fractionalIntegersAreRefusedNotTruncated() throws IOException {
    assertMentions(
        refused(
            withConfig(
                "frac", j -> j.add("hidden_size", new JsonPrimitive(new BigDecimal("64.5"))))),
        "hidden_size",
        "64.5",
        "whole number");
    assertMentions(
        refused(withConfig("huge", j -> j.addProperty("num_hidden_layers", 1e300))),
        "num_hidden_layers",
        "whole number");
    // 16.0 is a whole number: accepted
    Checkpoint.open(
        withConfig("whole", j -> j.add("hidden_size", new JsonPrimitive(new BigDecimal("16.0")))),
        TyingRule.STRICT);
  }

  @Test
  void ropeThetaMustBePositive() throws IOException {
    assertMentions(
        refused(withConfig("theta0", j -> j.addProperty("rope_theta", 0))),
        "rope_theta",
        "positive");
    assertMentions(
        refused(withConfig("thetaneg", j -> j.addProperty("rope_theta", -10000))), "rope_theta");
  }

  @Test
  void implausibleMaxPositionsAreRefused() throws IOException {
    assertMentions(
        refused(
            withConfig("maxpos", j -> j.addProperty("max_position_embeddings", Integer.MAX_VALUE))),
        "max positions",
        "2147483647");
    assertMentions(
        refused(withConfig("layers", j -> j.addProperty("num_hidden_layers", 1 << 30))), "layers");
  }

  @Test
  void eosBeyondTheEmbeddingIsRefusedOnOpen() throws IOException {
    assertMentions(
        refused(withConfig("eos", j -> j.addProperty("eos_token_id", 50304))),
        "eos_token_id 50304",
        "50304-row embedding");
    assertMentions(
        refused(withConfig("bos", j -> j.addProperty("bos_token_id", -1))), "bos_token_id -1");
  }

  @Test
  void tokenizerWithoutModelIsRefusedOnOpen() throws IOException {
    Path dir = valid("tok");
    Files.writeString(dir.resolve("tokenizer.json"), "{}");
    assertMentions(refused(dir), "tokenizer.json", "no \"model\"");
  }

  @Test
  void weightsThatAreNotARegularFileAreNotCalledMissing() throws IOException {
    Path dir = valid("devzero");
    Files.delete(dir.resolve("model.safetensors"));
    Files.createSymbolicLink(dir.resolve("model.safetensors"), Path.of("/dev/zero"));
    String m = refused(dir);
    assertMentions(m, "model.safetensors", "not a regular file");
    assertTrue(!m.contains("has no model.safetensors"), m);
  }

  @Test
  void overflowingShapeIsNamedAsSuch() throws IOException {
    Path dir = valid("overflow");
    String header =
        "{\"x\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,2],\"data_offsets\":[0,0]}}";
    byte[] h = header.getBytes(java.nio.charset.StandardCharsets.UTF_8);
    java.nio.ByteBuffer b =
        java.nio.ByteBuffer.allocate(8 + h.length).order(java.nio.ByteOrder.LITTLE_ENDIAN);
    b.putLong(h.length).put(h);
    Files.write(dir.resolve("model.safetensors"), b.array());
    String m = refused(dir);
    assertMentions(m, "overflows");
    assertTrue(!m.contains("= 0 bytes"), m);
  }

  /** MAKER's tensors with one value of {@code name} replaced. */
  private Path withValue(String name, String tensor, float value) throws IOException {
    Path dir = valid(name);
    List<Tensor> t = new ArrayList<>();
    for (Tensor x : MAKER.tensors()) {
      if (x.name().equals(tensor)) {
        float[] v = x.values().clone();
        v[3] = value;
        x = new Tensor(x.name(), x.dtype(), x.shape(), v);
      }
      t.add(x);
    }
    SafetensorsWriter.write(dir.resolve("model.safetensors"), t);
    return dir;
  }

  @Test
  void nonFiniteWeightIsNamedByTheScanAndScoresAreNeverOk()
      throws IOException, InterruptedException {
    String tensor = "model.layers.0.mlp.down_proj.weight";
    Path dir = withValue("nan", tensor, Float.NaN);
    Checkpoint c = Checkpoint.open(dir, TyingRule.STRICT); // headers are fine
    String m =
        assertThrows(CheckpointException.class, () -> WeightScan.requireFinite(c, "scan off"))
            .getMessage();
    assertMentions(m, tensor, "NaN", "element 3", "scan off");
    Checkpoint inf =
        Checkpoint.open(
            withValue("inf", "model.embed_tokens.weight", Float.NEGATIVE_INFINITY),
            TyingRule.STRICT);
    assertMentions(
        assertThrows(CheckpointException.class, () -> WeightScan.requireFinite(inf, "x"))
            .getMessage(),
        "model.embed_tokens.weight",
        "-Infinity");
    WeightScan.requireFinite(Checkpoint.open(valid("fine"), TyingRule.STRICT), "x");

    // scored anyway (scan skipped): the document's status says so
    try (OlmoModel model = OlmoModel.load(c, c, Device.cpu(), Precision.FP32);
        OlmoTokenizer tok = OlmoTokenizer.load(c.tokenizerJson());
        ScoringEngine engine = new ScoringEngine(model, tok)) {
      List<DocumentScore> r =
          engine.score(
              java.util.Arrays.asList("some text to score", "", null),
              engine.scorer(ScoringOptions.defaults()));
      assertEquals(Status.NON_FINITE, r.get(0).status());
      assertTrue(Double.isNaN(r.get(0).nll()));
      assertEquals(Status.EMPTY, r.get(1).status());
      assertEquals(Status.NULL_TEXT, r.get(2).status());
    }
  }

  @Test
  void longWindowsUpToTheModelsPositionsAreAcceptedAndOnlyUnaddressableOnesRefused()
      throws IOException {
    OlmoConfig c = Checkpoint.open(valid("w"), TyingRule.STRICT).config();
    // no (L, L) tensor any more: 50,000 tokens (above the old 23,170 limit) is a valid window
    assertEquals(
        50_000,
        PerplexityScorer.resolveWindow(
            c, ScoringOptions.defaults().withWindow(50_000, null).withAllowLongWindow(true)));
    // the default window is the model's positions, 65,536 for Olmo 3
    OlmoConfig big =
        Checkpoint.open(
                withConfig("bigpos", j -> j.addProperty("max_position_embeddings", 65536)),
                TyingRule.STRICT)
            .config();
    assertEquals(65536, PerplexityScorer.resolveWindow(big, ScoringOptions.defaults()));
    // what still must fit one Java array: a window's (L, D) rotary table
    assertEquals(Integer.MAX_VALUE / c.headDim(), PerplexityScorer.maxWindow(c));
    int tooLong = PerplexityScorer.maxWindow(c) + 1;
    String m =
        assertThrows(
                IllegalArgumentException.class,
                () ->
                    PerplexityScorer.resolveWindow(
                        c,
                        ScoringOptions.defaults()
                            .withWindow(tooLong, null)
                            .withAllowLongWindow(true)))
            .getMessage();
    assertMentions(m, "--window " + tooLong, String.valueOf(PerplexityScorer.maxWindow(c)));
  }
}
