package io.olmoppl.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.olmoppl.checkpoint.writer.CheckpointMaker;
import io.olmoppl.checkpoint.writer.SafetensorsWriter.Tensor;
import io.olmoppl.testing.Refcases;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The fingerprint covers the weights' content: two checkpoints that differ in one weight value
 * (same headers) differ, copies of one checkpoint agree, and the cached digest of a file is used
 * only while the file is unchanged.
 */
class FingerprintTest {
  private static final CheckpointMaker MAKER =
      CheckpointMaker.small(CheckpointLayout.OLMO)
          .withDims(16, 1, 4, 2, 24, 32)
          .withVocabRows(50304)
          .withSeed(7);

  @TempDir Path tmp;

  private static Path tokenizer() {
    return Refcases.dir("p01_olmo_tied_f32").resolve("tokenizer.json");
  }

  /** MAKER's tensors with element 3 of the second tensor raised by {@code delta}. */
  static List<Tensor> oneValueChanged(float delta) {
    List<Tensor> t = new ArrayList<>(MAKER.tensors());
    Tensor x = t.get(1);
    float[] v = x.values().clone();
    v[3] += delta;
    t.set(1, new Tensor(x.name(), x.dtype(), x.shape(), v));
    return t;
  }

  @Test
  void oneWeightValueChangesTheFingerprint() throws IOException {
    Path a = tmp.resolve("step1000");
    Path b = tmp.resolve("step2000");
    MAKER.write(a, tokenizer());
    MAKER.write(b, tokenizer(), oneValueChanged(0.25f));
    assertEquals(
        Files.size(a.resolve("model.safetensors")), Files.size(b.resolve("model.safetensors")));
    Checkpoint ca = Checkpoint.open(a, TyingRule.STRICT);
    Checkpoint cb = Checkpoint.open(b, TyingRule.STRICT);
    assertEquals(ca.tensors().keySet(), cb.tensors().keySet(), "same header entries");
    assertNotEquals(ca.fingerprint(), cb.fingerprint());
    assertEquals(16, ca.fingerprint().length());
  }

  @Test
  void copiesOfOneCheckpointShareTheFingerprint() throws IOException {
    Path a = tmp.resolve("a");
    Path b = tmp.resolve("b");
    MAKER.write(a, tokenizer());
    MAKER.write(b, tokenizer());
    assertEquals(
        Checkpoint.open(a, TyingRule.STRICT).fingerprint(),
        Checkpoint.open(b, TyingRule.STRICT).fingerprint());
  }

  @Test
  void theDigestIsCachedByFileIdentityAndRecomputedWhenTheFileChanges() throws IOException {
    Path dir = tmp.resolve("ckpt");
    MAKER.write(dir, tokenizer());
    Path file = dir.resolve("model.safetensors");
    FileDigests cache = FileDigests.in(tmp.resolve("cache"));
    FileDigests.Digest first = cache.of(file);
    assertFalse(first.cached());
    FileDigests.Digest again = cache.of(file);
    assertTrue(again.cached());
    assertEquals(first.digest(), again.digest());
    assertEquals(first.digest(), FileDigests.in(null).of(file).digest(), "as computed uncached");

    // rewrite one byte in place, same size, and put the modification time back
    FileTime mtime = Files.getLastModifiedTime(file);
    long at = Files.size(file) - 5;
    try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
      raf.seek(at);
      int old = raf.read();
      raf.seek(at);
      raf.write(old ^ 0x40);
    }
    Files.setLastModifiedTime(file, mtime);
    FileDigests.Digest changed = cache.of(file);
    assertFalse(changed.cached(), "the entry no longer matches the file");
    assertNotEquals(first.digest(), changed.digest());
    assertEquals(changed.digest(), FileDigests.in(null).of(file).digest());
  }

  @Test
  void aDigestSpansBlocksAndSeesEveryByte() throws IOException {
    // three blocks and a bit: a change in the last partial block changes the digest
    Path f = tmp.resolve("big.bin");
    long size = 3 * FileDigests.BLOCK_BYTES + 17;
    try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
      raf.setLength(size);
    }
    String zeros = FileDigests.in(null).of(f).digest();
    try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
      raf.seek(size - 1);
      raf.write(1);
    }
    String last = FileDigests.in(null).of(f).digest();
    assertNotEquals(zeros, last);
    try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
      raf.seek(size - 1);
      raf.write(0);
      raf.seek(FileDigests.BLOCK_BYTES + 12345);
      raf.write(1);
    }
    String middle = FileDigests.in(null).of(f).digest();
    assertNotEquals(zeros, middle);
    assertNotEquals(last, middle);
  }

  @Test
  void anUnwritableCacheOnlyCostsTime() throws IOException {
    Path dir = tmp.resolve("ckpt");
    MAKER.write(dir, tokenizer());
    Path blocked =
        Files.writeString(tmp.resolve("not-a-dir"), "x"); // a file where the cache would go
    FileDigests cache = FileDigests.in(blocked.resolve("fingerprints"));
    FileDigests.Digest d = cache.of(dir.resolve("model.safetensors"));
    assertFalse(d.cached());
    assertEquals(FileDigests.in(null).of(dir.resolve("model.safetensors")).digest(), d.digest());
  }

  @Test
  void entriesOfFilesThatAreGoneArePrunedOnceTheCacheIsLarge() throws IOException {
    Path cache = tmp.resolve("cache");
    FileDigests digests = FileDigests.in(cache);
    Path kept = Files.writeString(tmp.resolve("kept.bin"), "weights");
    digests.of(kept);
    for (int i = 0; i < FileDigests.PRUNE_ABOVE; i++) {
      Path gone = Files.writeString(tmp.resolve("gone" + i + ".bin"), "w" + i);
      digests.of(gone);
      Files.delete(gone);
    }
    try (var s = Files.list(cache)) {
      // the prune ran when the last entry was written, before its file was deleted
      assertEquals(
          2, s.filter(p -> p.toString().endsWith(".json")).count(), "kept.bin's and the last");
    }
    assertTrue(digests.of(kept).cached());
  }
}
