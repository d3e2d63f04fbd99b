package io.olmoppl.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.olmoppl.checkpoint.writer.CheckpointMaker;
import io.olmoppl.checkpoint.writer.SafetensorsWriter;
import io.olmoppl.checkpoint.writer.SafetensorsWriter.Tensor;
import io.olmoppl.model.OlmoModel;
import io.olmoppl.model.Precision;
import io.olmoppl.model.Window;
import io.olmoppl.runtime.DjlSettings;
import io.olmoppl.testing.Refcases;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link Checkpoint#open} on broken directories: every refusal is a {@link CheckpointException}
 * whose message names the problem (file, tensor, shapes). Also sharded checkpoints and the config
 * quirks of released OLMo checkpoints (hf_olmo's multi_query_attention, OLMo-1's eos_token_id 0).
 */
class LoaderTest {
  /** olmo layout, hidden 16, 1 block, 4 heads, 2 kv heads (kv dim 8), I = 24, untied, F32. */
  private static final CheckpointMaker MAKER =
      CheckpointMaker.small(CheckpointLayout.OLMO)
          .withDims(16, 1, 4, 2, 24, 32)
          .withVocabRows(CheckpointMaker.NEOX_ROWS)
          .withSeed(42);

  private static final String K_PROJ = "model.layers.0.self_attn.k_proj.weight";

  @TempDir Path tmp;

  @BeforeAll
  static void configure() {
    DjlSettings.configure();
  }

  /** A valid checkpoint directory. */
  private Path valid(String name) throws IOException {
    Path dir = tmp.resolve(name);
    MAKER.write(dir, Refcases.neoxTokenizer());
    return dir;
  }

  /** A checkpoint directory whose tensors are MAKER's, edited. */
  private Path withTensors(String name, Consumer<List<Tensor>> edit) throws IOException {
    Path dir = valid(name);
    List<Tensor> t = new ArrayList<>(MAKER.tensors());
    edit.accept(t);
    SafetensorsWriter.write(dir.resolve("model.safetensors"), t);
    return dir;
  }

  /** Replaces model.safetensors with a hand-made file: 8-byte length, header, data. */
  private Path withRawFile(String name, long headerLen, byte[] header, byte[] data)
      throws IOException {
    Path dir = valid(name);
    ByteBuffer b =
        ByteBuffer.allocate(8 + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(headerLen).put(header).put(data);
    Files.write(dir.resolve("model.safetensors"), b.array());
    return dir;
  }

  private Path withRawFile(String name, String header, int dataBytes) throws IOException {
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    return withRawFile(name, h.length, h, new byte[dataBytes]);
  }

  private static String refused(Path dir) {
    CheckpointException e =
        assertThrows(CheckpointException.class, () -> Checkpoint.open(dir, TyingRule.STRICT));
    assertTrue(e.getMessage() != null && !e.getMessage().isBlank());
    return e.getMessage();
  }

  private static void assertMentions(String message, String... parts) {
    for (String p : parts) {
      assertTrue(message.contains(p), "message should mention '" + p + "': " + message);
    }
  }

  private static void patchConfig(Path dir, Consumer<JsonObject> edit) throws IOException {
    Path cfg = dir.resolve("config.json");
    JsonObject j = JsonParser.parseString(Files.readString(cfg)).getAsJsonObject();
    edit.accept(j);
    Files.writeString(cfg, j.toString());
  }

  @Test
  void validCheckpointOpens() throws IOException {
    Checkpoint c = Checkpoint.open(valid("ok"), TyingRule.STRICT);
    assertEquals(CheckpointLayout.OLMO, c.config().layout());
    assertEquals(2, c.config().numKeyValueHeads());
    assertEquals(MAKER.tensors().size(), c.tensors().size());
    assertFalse(c.tying().tied());
    assertEquals(50279, c.config().eosTokenId());
    assertTrue(c.config().warnings().isEmpty());
  }

  // ---------------------------------------------------------------------------------------------------------------
  // safetensors structure

  @Test
  void truncatedFile() throws IOException {
    Path dir = valid("truncated");
    Path f = dir.resolve("model.safetensors");
    byte[] all = Files.readAllBytes(f);
    Files.write(f, Arrays.copyOf(all, all.length - 10));
    // the last tensor written is lm_head.weight: its end lies past the shortened data
    assertMentions(
        refused(dir), "model.safetensors", "lm_head.weight", "data_offsets", "truncated");
  }

  @Test
  void headerLengthLargerThanFile() throws IOException {
    byte[] h = "{}".getBytes(StandardCharsets.UTF_8);
    Path dir = withRawFile("hlen", 4096, h, new byte[16]);
    assertMentions(refused(dir), "model.safetensors", "header length", "4096", "truncated");
  }

  @Test
  void headerLengthBeyondLimit() throws IOException {
    byte[] h = "{}".getBytes(StandardCharsets.UTF_8);
    Path dir = withRawFile("hhuge", 1L << 40, h, new byte[16]);
    assertMentions(refused(dir), "model.safetensors", "header length", String.valueOf(1L << 40));
  }

  @Test
  void fileShorterThanLengthField() throws IOException {
    Path dir = valid("tiny");
    Files.write(dir.resolve("model.safetensors"), new byte[] {1, 2, 3});
    assertMentions(refused(dir), "model.safetensors", "3 bytes");
  }

  @Test
  void headerNotJson() throws IOException {
    Path dir = withRawFile("nojson", "{\"a\": [1, 2,, oops", 0);
    assertMentions(refused(dir), "model.safetensors", "not a JSON object");
    Path array = withRawFile("jsonarray", "[1, 2, 3]", 0);
    assertMentions(refused(array), "model.safetensors", "not a JSON object");
  }

  @Test
  void dataOffsetsOutsideFile() throws IOException {
    Path dir =
        withRawFile(
            "outside",
            "{\"blob.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,32]}}",
            16);
    assertMentions(
        refused(dir), "model.safetensors", "blob.weight", "data_offsets [16, 32]", "16 data bytes");
  }

  @Test
  void overlappingTensors() throws IOException {
    Path dir =
        withRawFile(
            "overlap",
            "{\"first.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                + "\"second.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
            24);
    assertMentions(refused(dir), "model.safetensors", "first.weight", "second.weight", "overlap");
  }

  @Test
  void dtypeTimesShapeIsNotByteLength() throws IOException {
    Path dir =
        withRawFile(
            "size",
            "{\"odd.weight\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}",
            16);
    assertMentions(refused(dir), "model.safetensors", "odd.weight", "12 bytes", "16 bytes");
    Path f16 =
        withRawFile(
            "size16",
            "{\"half.weight\":{\"dtype\":\"F16\",\"shape\":[2,4],\"data_offsets\":[0,32]}}",
            32);
    assertMentions(refused(f16), "half.weight", "16 bytes", "32 bytes");
  }

  @Test
  void unsupportedDtype() throws IOException {
    Path dir =
        withRawFile(
            "i64",
            "{\"ids.weight\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}",
            16);
    assertMentions(refused(dir), "model.safetensors", "ids.weight", "I64", "F32, F16 and BF16");
  }

  @Test
  void negativeDimension() throws IOException {
    Path dir =
        withRawFile(
            "neg",
            "{\"neg.weight\":{\"dtype\":\"F32\",\"shape\":[-1,4],\"data_offsets\":[0,16]}}",
            16);
    assertMentions(refused(dir), "neg.weight", "negative");
  }

  // ---------------------------------------------------------------------------------------------------------------
  // tensors against the config

  @Test
  void missingTensorNamedWithExpectedShape() throws IOException {
    Path dir = withTensors("missing", t -> t.removeIf(x -> x.name().equals(K_PROJ)));
    assertMentions(refused(dir), K_PROJ, "[8, 16]", "lacks 1 tensor");
  }

  @Test
  void missingEmbeddingNamedWithExpectedShape() throws IOException {
    Path dir =
        withTensors("noemb", t -> t.removeIf(x -> x.name().equals("model.embed_tokens.weight")));
    assertMentions(refused(dir), "model.embed_tokens.weight", "[50304, 16]");
  }

  @Test
  void unexpectedExtraTensorNamed() throws IOException {
    Path dir =
        withTensors(
            "extra",
            t ->
                t.add(
                    new Tensor(
                        "model.layers.0.self_attn.extra_proj.weight",
                        DType.F32,
                        new long[] {2, 3},
                        new float[6])));
    assertMentions(
        refused(dir), "model.layers.0.self_attn.extra_proj.weight", "[2, 3]", "does not use");
  }

  @Test
  void extraBlockOfAnotherConfigIsRefused() throws IOException {
    // weights of a 2-block model under a 1-block config: every tensor of block 1 is unexpected
    CheckpointMaker two = MAKER.withDims(16, 2, 4, 2, 24, 32);
    Path dir = valid("twoblocks");
    SafetensorsWriter.write(dir.resolve("model.safetensors"), two.tensors());
    assertMentions(refused(dir), "model.layers.1.", "7 tensor(s)");
  }

  @Test
  void misshapedTensorNamedWithBothShapes() throws IOException {
    Path dir =
        withTensors(
            "shape",
            t ->
                t.replaceAll(
                    x ->
                        x.name().equals(K_PROJ)
                            ? new Tensor(K_PROJ, DType.F32, new long[] {16, 16}, new float[256])
                            : x));
    assertMentions(refused(dir), K_PROJ, "[16, 16]", "[8, 16]");
  }

  @Test
  void misshapedOutputMatrixNamed() throws IOException {
    Path dir =
        withTensors(
            "outshape",
            t ->
                t.replaceAll(
                    x ->
                        x.name().equals("lm_head.weight")
                            ? new Tensor(
                                "lm_head.weight",
                                DType.F32,
                                new long[] {50304, 8},
                                new float[50304 * 8])
                            : x));
    assertMentions(refused(dir), "lm_head.weight", "[50304, 8]", "[50304, 16]");
  }

  // ---------------------------------------------------------------------------------------------------------------
  // directory contents

  @Test
  void pickleOnlyDirectoryIsRefusedWithoutReadingIt() throws IOException {
    Path dir = valid("pickle");
    Files.delete(dir.resolve("model.safetensors"));
    Path bin = dir.resolve("pytorch_model.bin");
    byte[] garbage =
        new byte[64]; // not a pickle, not a zip: any attempt to parse it fails differently
    Arrays.fill(garbage, (byte) 0xEE);
    Files.write(bin, garbage);
    bin.toFile().setReadable(false, false);
    String msg = refused(dir);
    assertMentions(msg, "pytorch_model.bin", "safetensors", "pickle");
    assertFalse(msg.contains("not a valid safetensors file"), msg);
  }

  @Test
  void noWeightsAtAll() throws IOException {
    Path dir = valid("noweights");
    Files.delete(dir.resolve("model.safetensors"));
    assertMentions(refused(dir), "model.safetensors", "model.safetensors.index.json");
  }

  @Test
  void noConfig() throws IOException {
    Path dir = valid("noconfig");
    Files.delete(dir.resolve("config.json"));
    assertMentions(refused(dir), "config.json");
  }

  @Test
  void notADirectory() throws IOException {
    Path file = Files.writeString(tmp.resolve("plain.txt"), "x");
    assertMentions(refused(file), "plain.txt", "not a directory");
  }

  @Test
  void noTokenizer() throws IOException {
    Path dir = valid("notok");
    Files.delete(dir.resolve("tokenizer.json"));
    assertMentions(refused(dir), "tokenizer.json");
  }

  @Test
  void tokenizerLargerThanEmbedding() throws IOException {
    Path dir = tmp.resolve("smallvocab");
    MAKER.withVocabRows(1000).write(dir, Refcases.neoxTokenizer());
    patchConfig(
        dir, j -> j.addProperty("eos_token_id", 1)); // an EOS beyond the rows is refused first
    assertMentions(refused(dir), "tokenizer.json", "50279", "1000 embedding rows");
  }

  @Test
  void tokenizerNotJson() throws IOException {
    Path dir = valid("badtok");
    Files.writeString(dir.resolve("tokenizer.json"), "{\"model\": {\"vocab\": [1, 2,, oops");
    assertMentions(refused(dir), "tokenizer.json");
  }

  @Test
  void configValueOfWrongType() throws IOException {
    Path dir = valid("badvalue");
    patchConfig(dir, j -> j.addProperty("hidden_size", "sixteen"));
    assertMentions(refused(dir), "config.json", "hidden_size");
  }

  // ---------------------------------------------------------------------------------------------------------------
  // sharded checkpoints

  /**
   * Writes MAKER's tensors as two shards plus model.safetensors.index.json; returns the directory.
   */
  private Path sharded(String name, String secondShardNameInIndex) throws IOException {
    Path dir = valid(name);
    Files.delete(dir.resolve("model.safetensors"));
    List<Tensor> all = MAKER.tensors();
    List<Tensor> a = all.subList(0, all.size() / 2);
    List<Tensor> b = all.subList(all.size() / 2, all.size());
    String s1 = "model-00001-of-00002.safetensors";
    String s2 = "model-00002-of-00002.safetensors";
    SafetensorsWriter.write(dir.resolve(s1), a);
    SafetensorsWriter.write(dir.resolve(s2), b);
    JsonObject map = new JsonObject();
    a.forEach(t -> map.addProperty(t.name(), s1));
    b.forEach(t -> map.addProperty(t.name(), secondShardNameInIndex));
    JsonObject idx = new JsonObject();
    JsonObject meta = new JsonObject();
    meta.addProperty("total_size", 0);
    idx.add("metadata", meta);
    idx.add("weight_map", map);
    Files.writeString(dir.resolve("model.safetensors.index.json"), idx.toString());
    return dir;
  }

  @Test
  void shardedCheckpointLoadsAndScoresLikeSingleFile() throws IOException {
    Path dir = sharded("sharded", "model-00002-of-00002.safetensors");
    Checkpoint c = Checkpoint.open(dir, TyingRule.STRICT);
    assertEquals(MAKER.tensors().size(), c.tensors().size());
    Set<Path> files = new HashSet<>();
    c.tensors().values().forEach(l -> files.add(l.file().path().getFileName()));
    assertEquals(
        Set.of(
            Path.of("model-00001-of-00002.safetensors"),
            Path.of("model-00002-of-00002.safetensors")),
        files);
    Checkpoint single = Checkpoint.open(valid("single"), TyingRule.STRICT);
    assertEquals(single.uniqueWeightBytes(), c.uniqueWeightBytes());
    long[] tokens = {50279, 12, 999, 4000, 50000, 7, 7, 123};
    try (OlmoModel m1 = OlmoModel.load(c, c, Device.cpu(), Precision.FP32);
        OlmoModel m2 = OlmoModel.load(single, single, Device.cpu(), Precision.FP32);
        NDManager bm = m1.newBatchManager()) {
      float[] a = m1.logProbs(bm, List.of(new Window(tokens, 0)))[0];
      float[] b = m2.logProbs(bm, List.of(new Window(tokens, 0)))[0];
      assertEquals(tokens.length - 1, a.length);
      for (int i = 0; i < a.length; i++) {
        assertEquals(b[i], a[i], 1e-6, "target " + i);
      }
    }
  }

  @Test
  void shardedIndexNamingMissingShard() throws IOException {
    Path dir = sharded("missingshard", "model-00003-of-00003.safetensors");
    assertMentions(
        refused(dir), "model.safetensors.index.json", "model-00003-of-00003.safetensors");
  }

  @Test
  void shardedIndexPointingAtWrongShard() throws IOException {
    // every tensor of the second half is said to be in the first shard
    Path dir = sharded("wrongshard", "model-00001-of-00002.safetensors");
    String last = MAKER.tensors().get(MAKER.tensors().size() - 1).name();
    String msg = refused(dir);
    assertMentions(msg, "model-00001-of-00002.safetensors", "does not hold");
    assertTrue(
        MAKER.tensors().stream()
            .skip(MAKER.tensors().size() / 2)
            .anyMatch(t -> msg.contains(t.name())),
        "names a tensor of the second half (e.g. " + last + "): " + msg);
  }

  @Test
  void shardIndexNotJson() throws IOException {
    Path dir = sharded("badindex", "model-00002-of-00002.safetensors");
    Files.writeString(dir.resolve("model.safetensors.index.json"), "{\"weight_map\": {\"a\": ");
    assertMentions(refused(dir), "model.safetensors.index.json");
  }

  // ---------------------------------------------------------------------------------------------------------------
  // config quirks

  private static JsonObject hfOlmoConfig() {
    return CheckpointMaker.small(CheckpointLayout.HF_OLMO).withDims(16, 1, 4, 4, 24, 32).config();
  }

  @Test
  void hfOlmoMultiQueryAttentionMeansOneKvHead() {
    JsonObject j = hfOlmoConfig();
    j.add("n_kv_heads", JsonNull.INSTANCE);
    j.addProperty("multi_query_attention", true);
    OlmoConfig c = OlmoConfig.fromJson(j, "config.json");
    assertEquals(1, c.numKeyValueHeads());
    assertEquals(4, c.headDim());
    assertEquals(4, c.kvDim());

    JsonObject noMqa = hfOlmoConfig();
    noMqa.add("n_kv_heads", JsonNull.INSTANCE);
    noMqa.addProperty("multi_query_attention", false);
    assertEquals(4, OlmoConfig.fromJson(noMqa, "config.json").numKeyValueHeads());

    JsonObject absent = hfOlmoConfig();
    absent.remove("n_kv_heads");
    assertEquals(4, OlmoConfig.fromJson(absent, "config.json").numKeyValueHeads());

    JsonObject both = hfOlmoConfig();
    both.addProperty("n_kv_heads", 4);
    both.addProperty("multi_query_attention", true);
    CheckpointException e =
        assertThrows(CheckpointException.class, () -> OlmoConfig.fromJson(both, "config.json"));
    assertMentions(e.getMessage(), "multi_query_attention", "n_kv_heads");
  }

  @Test
  void multiQueryHfOlmoCheckpointLoads() throws IOException {
    // the checkpoint's att_proj has d_model + 2 * head_dim rows when kv = 1
    CheckpointMaker mqa =
        CheckpointMaker.small(CheckpointLayout.HF_OLMO).withDims(16, 1, 4, 1, 24, 32);
    Path dir = tmp.resolve("mqa");
    mqa.write(dir, Refcases.neoxTokenizer());
    patchConfig(
        dir,
        j -> {
          j.add("n_kv_heads", JsonNull.INSTANCE);
          j.addProperty("multi_query_attention", true);
        });
    Checkpoint c = Checkpoint.open(dir, TyingRule.STRICT);
    assertEquals(1, c.config().numKeyValueHeads());
    assertEquals(
        16 + 2 * 4,
        c.tensors().get("model.transformer.blocks.0.att_proj.weight").info().shape()[0]);
  }

  @Test
  void eosZeroWithNeoxTokenizerBecomes50279WithWarning() throws IOException {
    for (CheckpointLayout layout :
        new CheckpointLayout[] {CheckpointLayout.OLMO, CheckpointLayout.HF_OLMO}) {
      Path dir = tmp.resolve("eos0-" + layout.id());
      CheckpointMaker.small(layout)
          .withDims(16, 1, 4, 4, 24, 32)
          .withVocabRows(CheckpointMaker.NEOX_ROWS)
          .write(dir, Refcases.neoxTokenizer());
      patchConfig(dir, j -> j.addProperty("eos_token_id", 0));
      Checkpoint c = Checkpoint.open(dir, TyingRule.STRICT);
      assertEquals(50279, c.config().eosTokenId(), layout.id());
      assertEquals(1, c.config().warnings().size(), layout.id() + ": " + c.config().warnings());
      assertMentions(c.config().warnings().get(0), "eos_token_id 0", "50279");
      assertEquals(
          50279,
          io.olmoppl.scoring.PerplexityScorer.prefixToken(c.config(), io.olmoppl.scoring.Bos.AUTO));
    }
  }

  @Test
  void eosZeroIsKeptWhenTheTokenizerCallsZeroEndOfText() throws IOException {
    // the "pii-special" tokenizer variant: id 0 is <|endoftext|>, so eos 0 is right
    Path dir = valid("eos0-pii");
    Path tok = dir.resolve("tokenizer.json");
    String json = Files.readString(tok);
    JsonObject t = JsonParser.parseString(json).getAsJsonObject();
    for (var e : t.getAsJsonArray("added_tokens")) {
      JsonObject o = e.getAsJsonObject();
      if (o.get("id").getAsInt() == 0) {
        o.addProperty("content", "<|endoftext|>");
      } else if (o.get("id").getAsInt() == 50279) {
        o.addProperty("content", "|||IP_ADDRESS|||");
      }
    }
    Files.writeString(tok, t.toString());
    patchConfig(dir, j -> j.addProperty("eos_token_id", 0));
    Checkpoint c = Checkpoint.open(dir, TyingRule.STRICT);
    assertEquals(0, c.config().eosTokenId());
    assertTrue(c.config().warnings().isEmpty(), c.config().warnings().toString());
  }

  @Test
  void fingerprintDependsOnConfigAndTensors() throws IOException {
    String a = Checkpoint.open(valid("fp-a"), TyingRule.STRICT).fingerprint();
    assertEquals(
        a,
        Checkpoint.open(valid("fp-b"), TyingRule.STRICT).fingerprint(),
        "same files, same fingerprint");
    Path c = valid("fp-c");
    patchConfig(c, j -> j.addProperty("eos_token_id", 50278));
    assertNotEquals(a, Checkpoint.open(c, TyingRule.STRICT).fingerprint());
  }
}
