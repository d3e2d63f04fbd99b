package io.olmoppl.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import io.olmoppl.checkpoint.writer.CheckpointMaker;
import io.olmoppl.checkpoint.writer.SafetensorsWriter;
import io.olmoppl.checkpoint.writer.SafetensorsWriter.Tensor;
import io.olmoppl.testing.Refcases;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Sharded checkpoints are read as strictly as one {@code model.safetensors}: a tensor a shard holds
 * but the index does not list, or one stored twice with different contents, is refused; a
 * byte-identical second copy is an alias, as a tied output copy is.
 */
class ShardStrictnessTest {
  private static final CheckpointMaker MAKER =
      CheckpointMaker.small(CheckpointLayout.OLMO)
          .withDims(16, 1, 4, 2, 24, 32)
          .withVocabRows(50304)
          .withSeed(7);
  private static final String S1 = "model-00001-of-00002.safetensors";
  private static final String S2 = "model-00002-of-00002.safetensors";

  @TempDir Path tmp;

  /**
   * Writes MAKER's tensors as two shards, the first half in S1 plus {@code extraInFirst}, and an
   * index that lists only MAKER's tensors (each in its own half).
   */
  private Path sharded(String name, List<Tensor> extraInFirst) throws IOException {
    return sharded(MAKER, name, extraInFirst);
  }

  private Path sharded(CheckpointMaker maker, String name, List<Tensor> extraInFirst)
      throws IOException {
    Path dir = tmp.resolve(name);
    maker.write(dir, Refcases.dir("p01_olmo_tied_f32").resolve("tokenizer.json"));
    Files.delete(dir.resolve("model.safetensors"));
    List<Tensor> all = maker.tensors();
    List<Tensor> a = new ArrayList<>(all.subList(0, all.size() / 2));
    List<Tensor> b = all.subList(all.size() / 2, all.size());
    JsonObject map = new JsonObject();
    a.forEach(t -> map.addProperty(t.name(), S1));
    b.forEach(t -> map.addProperty(t.name(), S2));
    a.addAll(extraInFirst);
    SafetensorsWriter.write(dir.resolve(S1), a);
    SafetensorsWriter.write(dir.resolve(S2), b);
    JsonObject idx = new JsonObject();
    idx.add("metadata", new JsonObject());
    idx.add("weight_map", map);
    Files.writeString(dir.resolve("model.safetensors.index.json"), idx.toString());
    return dir;
  }

  /** The last tensor (in the second shard), with element {@code i} set to {@code v} if i >= 0. */
  private static Tensor lastWith(int i, float v) {
    Tensor t = MAKER.tensors().get(MAKER.tensors().size() - 1);
    float[] values = t.values().clone();
    if (i >= 0) {
      values[i] = v;
    }
    return new Tensor(t.name(), t.dtype(), t.shape(), values);
  }

  private static String refused(Path dir) {
    return assertThrows(CheckpointException.class, () -> Checkpoint.open(dir, TyingRule.STRICT))
        .getMessage();
  }

  @Test
  void aTensorInAShardButNotInTheIndexIsRefused() throws IOException {
    // in one model.safetensors the same tensor is refused as unexpected; the old index reader never
    // looked at what a shard holds besides what the index lists
    float[] v = new float[16];
    v[3] = 1f;
    Path dir =
        sharded(
            "unlisted",
            List.of(new Tensor("model.transformer.extra.weight", DType.F32, new long[] {16}, v)));
    String msg = refused(dir);
    assertTrue(
        msg.contains("model.transformer.extra.weight [16] in " + S1)
            && msg.contains("model.safetensors.index.json does not list")
            && msg.contains("Re-download"),
        msg);
  }

  @Test
  void aTiedOutputCopyHiddenInAShardIsNotIgnored() throws IOException {
    // a differing output matrix is a tying conflict in one file; in a shard it must not vanish
    CheckpointMaker tied = MAKER.withTied(true, CheckpointMaker.OutputCopy.NONE);
    Tensor emb =
        tied.tensors().stream()
            .filter(t -> t.name().equals(CheckpointLayout.OLMO.embedding()))
            .findFirst()
            .orElseThrow();
    float[] other = emb.values().clone();
    other[5] += 1f;
    Path dir =
        sharded(
            tied,
            "hiddenhead",
            List.of(new Tensor(CheckpointLayout.OLMO.output(), emb.dtype(), emb.shape(), other)));
    String msg = refused(dir);
    assertTrue(msg.contains(CheckpointLayout.OLMO.output()) && msg.contains("does not list"), msg);
  }

  @Test
  void aTensorStoredTwiceWithOtherBytesIsRefused() throws IOException {
    Tensor last = lastWith(-1, 0);
    float original = last.values()[7];
    Path dir = sharded("differ", List.of(lastWith(7, original + 0.5f)));
    String msg = refused(dir);
    assertTrue(
        msg.contains("tensor " + last.name() + " is stored twice with different contents")
            && msg.contains("in " + S2 + ", where model.safetensors.index.json places it")
            && msg.contains("and in " + S1)
            && msg.contains("element 7 is " + original + " against " + (original + 0.5f)),
        msg);
  }

  @Test
  void aTensorStoredTwiceWithAnotherShapeIsRefused() throws IOException {
    Tensor last = lastWith(-1, 0);
    Tensor reshaped =
        new Tensor(last.name(), last.dtype(), new long[] {1, last.values().length}, last.values());
    String msg = refused(sharded("reshaped", List.of(reshaped)));
    assertTrue(msg.contains("stored twice") && msg.contains("against F32 [1, "), msg);
  }

  @Test
  void aByteIdenticalSecondCopyIsAnAlias() throws IOException {
    Path dir = sharded("alias", List.of(lastWith(-1, 0)));
    Checkpoint c = Checkpoint.open(dir, TyingRule.STRICT);
    String name = lastWith(-1, 0).name();
    assertEquals(S2, c.tensors().get(name).file().path().getFileName().toString());
    assertEquals(MAKER.tensors().size(), c.tensors().size());
  }

  @Test
  void firstMismatchCrossesChunkBoundaries() {
    byte[] x = new byte[100];
    byte[] y = new byte[100];
    y[61] = 1;
    List<ByteBuffer> a =
        List.of(ByteBuffer.wrap(x, 0, 30).slice(), ByteBuffer.wrap(x, 30, 70).slice());
    List<ByteBuffer> b =
        List.of(ByteBuffer.wrap(y, 0, 60).slice(), ByteBuffer.wrap(y, 60, 40).slice());
    assertEquals(61, SafetensorsIndex.firstMismatch(a, b));
    assertEquals(-1, SafetensorsIndex.firstMismatch(a, List.of(ByteBuffer.wrap(new byte[100]))));
  }
}
