package io.olmoppl.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.BaseNDManager;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.olmoppl.batching.ScoringEngine;
import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.checkpoint.TyingRule;
import io.olmoppl.runtime.TorchEngine;
import io.olmoppl.scoring.Bos;
import io.olmoppl.scoring.DocumentScore;
import io.olmoppl.scoring.PerplexityScorer;
import io.olmoppl.scoring.ScoringOptions;
import io.olmoppl.testing.Refcases;
import java.lang.reflect.Field;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Native-memory discipline (DJL puts an op's result in its receiver's manager,
 * docs/development/memory_management.md in deepjavalibrary/djl): the weights' manager is capped, so
 * an op with a weight as receiver fails instead of leaking into it, and scoring many batches leaves
 * the weights' manager exactly as loaded.
 */
class MemoryTest {
  private static OlmoModel model;

  @BeforeAll
  static void load() {
    // p01: tied OLMo, 2 blocks; the tied matrix is one tensor
    model = Refcases.cpuModel("p01_olmo_tied_f32");
  }

  @AfterAll
  static void close() {
    if (model != null) {
      model.close();
    }
  }

  /**
   * @return the number of resources attached directly to {@code m} (arrays and sub-managers)
   */
  private static int resourceCount(NDManager m) throws ReflectiveOperationException {
    Field f = BaseNDManager.class.getDeclaredField("resources");
    f.setAccessible(true);
    return ((Map<?, ?>) f.get(m)).size();
  }

  private static int arrayCount(NDManager m) {
    return ((BaseNDManager) m).getManagedArrays().size();
  }

  @Test
  void weightAsReceiverThrows() throws Exception {
    NDManager w = model.weightsManager();
    int before = resourceCount(w);
    NDArray emb = model.embedding();
    assertSame(w, emb.getManager(), "the embedding lives in the weights' manager");
    IllegalStateException add = assertThrows(IllegalStateException.class, () -> emb.add(1));
    assertTrue(add.getMessage().contains("capped"), add.getMessage());
    assertThrows(IllegalStateException.class, () -> emb.get(0));
    assertThrows(IllegalStateException.class, () -> emb.transpose());
    assertThrows(IllegalStateException.class, () -> model.output().mul(2));
    assertThrows(IllegalStateException.class, () -> w.create(new float[] {1f}));
    assertEquals(before, resourceCount(w), "a refused op attaches nothing");
    // an activation as receiver is fine: the result goes to the activation's manager
    try (NDManager m = TorchEngine.get().newBaseManager()) {
      NDArray ids = m.create(new long[] {3, 7});
      NDArray rows =
          ids.getNDArrayInternal()
              .embedding(ids, emb, ai.djl.ndarray.types.SparseFormat.DENSE)
              .head();
      assertSame(m, rows.getManager());
      assertEquals(model.config().hiddenSize(), rows.getShape().get(1));
    }
    assertEquals(before, resourceCount(w));
  }

  /**
   * The loaded model holds its own copy of every weight, so the checkpoint's mapped pages must not
   * stay in the process next to it (they did, until the garbage collector found the buffers).
   */
  @Test
  void loadingLeavesNoMappingOfTheCheckpoint() throws Exception {
    Assumptions.assumeTrue(Files.isReadable(Path.of("/proc/self/maps")), "Linux only");
    Path dir = Refcases.dir("p01_olmo_tied_f32");
    Checkpoint ckpt = Checkpoint.open(dir, TyingRule.STRICT); // also scans every weight
    try (OlmoModel m = OlmoModel.load(ckpt, ckpt, Device.cpu(), Precision.FP32)) {
      String file = dir.resolve("model.safetensors").toRealPath().toString();
      List<String> mapped =
          Files.readAllLines(Path.of("/proc/self/maps")).stream()
              .filter(l -> l.endsWith(file))
              .toList();
      assertEquals(
          0,
          mapped.size(),
          () -> "mappings of the checkpoint left after loading, first: " + mapped.get(0));
      assertEquals(model.config().hiddenSize(), m.config().hiddenSize());
    }
  }

  @Test
  void weightsManagerHoldsExactlyTheLoadedTensors() throws Exception {
    // tied p01 (olmo layout, 2 blocks): embedding once + per block fused qkv, o_proj, fused [up |
    // gate], down_proj,
    // + the unit scale and zero shift that torch's fused layer norm takes for OLMo-1's
    // parameter-free norms; plus views, which share the tensors' storage: per block the MLP's one
    // intermediate slice (up, gate, down) and the output matrix's 50,304 rows in slices of 1,536
    // (6 MiB of fp32 logits over a 1,024-token pass)
    int expected = 1 + 2 * 4 + 2 + 2 * 3 + (50304 + 1535) / 1536;
    assertEquals(expected, arrayCount(model.weightsManager()));
    assertEquals(expected, resourceCount(model.weightsManager()));
    assertSame(model.embedding(), model.output());
  }

  @Test
  void fiftyBatchesLeaveWeightsManagerUnchanged() throws Exception {
    NDManager w = model.weightsManager();
    int resources = resourceCount(w);
    int arrays = arrayCount(w);
    SplittableRandom rnd = new SplittableRandom(7);
    float[] first = null;
    long[] firstTokens = null;
    for (int batch = 0; batch < 50; batch++) {
      List<Window> windows = new ArrayList<>();
      for (int r = 0; r < 1 + batch % 3; r++) {
        long[] t = new long[2 + rnd.nextInt(20)];
        for (int i = 0; i < t.length; i++) {
          t[i] = rnd.nextInt(50280);
        }
        windows.add(new Window(t, 0));
      }
      if (firstTokens == null) {
        firstTokens = windows.get(0).tokens();
      }
      NDManager kept;
      try (NDManager bm = model.newBatchManager()) {
        kept = bm;
        float[][] lp = model.logProbs(bm, windows);
        assertEquals(windows.size(), lp.length);
        if (first == null) {
          first = lp[0];
        }
        assertEquals(0, bm.getManagedArrays().size(), "intermediates are freed with each pass");
      }
      assertFalse(kept.isOpen());
      assertEquals(resources, resourceCount(w), "weights' resources after batch " + batch);
      assertEquals(arrays, arrayCount(w), "weights' arrays after batch " + batch);
    }
    // the weights are intact: the first batch scores the same again
    try (NDManager bm = model.newBatchManager()) {
      float[] again = model.logProbs(bm, List.of(new Window(firstTokens, 0)))[0];
      assertEquals(first.length, again.length);
      for (int i = 0; i < first.length; i++) {
        assertEquals(first[i], again[i], 1e-5, "target " + i);
      }
    }

    // the same through the engine: many small batches (one window each)
    // scoreIds never tokenizes, so no tokenizer is needed
    PerplexityScorer scorer =
        new PerplexityScorer(
            model.config(),
            ScoringOptions.defaults().withBos(Bos.EOS).withWindow(8, 8).withBatchTokens(8));
    List<long[]> docs = new ArrayList<>();
    for (int d = 0; d < 10; d++) {
      long[] t = new long[30 + d];
      for (int i = 0; i < t.length; i++) {
        t[i] = rnd.nextInt(50280);
      }
      docs.add(t);
    }
    List<DocumentScore> scores;
    try (ScoringEngine engine = new ScoringEngine(model, null)) {
      scores = engine.scoreIds(docs, new long[docs.size()], scorer);
    }
    assertEquals(30, scores.get(0).tokens());
    assertTrue(scores.stream().mapToInt(DocumentScore::windows).sum() >= 40);
    assertEquals(resources, resourceCount(w), "weights' resources after scoring");
    assertEquals(arrays, arrayCount(w), "weights' arrays after scoring");
  }

  /** Resident set size of this process in bytes, from /proc (Linux). */
  private static long rssBytes() throws java.io.IOException {
    for (String line :
        java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/self/status"))) {
      if (line.startsWith("VmRSS:")) {
        return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
      }
    }
    throw new IllegalStateException("no VmRSS in /proc/self/status");
  }

  @Test
  void longRunKeepsNativeMemoryFlat() throws Exception {
    // 200 batches of 2 x 64 tokens. A batch allocates ~25 MB of logits and ~1 MB of other
    // activations, so any
    // per-batch leak of 0.5 MB or more exceeds the bound; below it is room for JVM heap and
    // allocator noise.
    SplittableRandom r = new SplittableRandom(11);
    List<Window> batch = new ArrayList<>();
    for (int b = 0; b < 2; b++) {
      long[] ids = new long[65];
      for (int i = 0; i < ids.length; i++) {
        ids[i] = r.nextInt(50000);
      }
      batch.add(new Window(ids, 0));
    }
    for (int i = 0; i < 30; i++) { // warm-up: allocator pools, JIT
      try (NDManager bm = model.newBatchManager()) {
        model.logProbs(bm, batch);
      }
    }
    System.gc();
    long before = rssBytes();
    for (int i = 0; i < 200; i++) {
      try (NDManager bm = model.newBatchManager()) {
        model.logProbs(bm, batch);
      }
    }
    System.gc();
    long grown = rssBytes() - before;
    assertTrue(
        grown < 100L << 20, "resident memory grew by " + (grown >> 20) + " MB over 200 batches");
  }
}
