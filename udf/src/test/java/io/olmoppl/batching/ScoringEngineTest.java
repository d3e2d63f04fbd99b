package io.olmoppl.batching;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.checkpoint.TyingRule;
import io.olmoppl.model.OlmoModel;
import io.olmoppl.model.Precision;
import io.olmoppl.scoring.Bos;
import io.olmoppl.scoring.DocumentScore;
import io.olmoppl.scoring.PerplexityScorer;
import io.olmoppl.scoring.ScoringOptions;
import io.olmoppl.scoring.Status;
import io.olmoppl.testing.Refcases;
import io.olmoppl.testing.Refcases.Expected;
import io.olmoppl.tokenizer.OlmoTokenizer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Collectors;
import org.apache.arrow.memory.BufferAllocator;
import org.apache.arrow.memory.RootAllocator;
import org.apache.arrow.vector.VarCharVector;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The engine with plain threads standing in for Spark tasks, on reference case p04 (GQA, F16
 * weights): concurrent requests with different options, mixed into shared batches, each reproduce
 * the reference log-probs; rows stay in order; cancelled requests leave the others intact; a tiny
 * queue bound does not deadlock.
 */
class ScoringEngineTest {
  private static final String CASE = "p04_olmo_untied_gqa_f16";
  private static Checkpoint ckpt;
  private static OlmoModel model;
  private static OlmoTokenizer tokenizer;

  @BeforeAll
  static void load() {
    ckpt = Checkpoint.open(Refcases.dir(CASE), TyingRule.STRICT);
    model = OlmoModel.load(ckpt, ckpt, Device.cpu(), Precision.FP32);
    tokenizer = OlmoTokenizer.load(ckpt.tokenizerJson());
  }

  @AfterAll
  static void close() {
    tokenizer.close();
    model.close();
  }

  private static VarCharVector texts(BufferAllocator alloc, List<String> texts) {
    VarCharVector v = new VarCharVector("text", alloc);
    v.allocateNew(texts.size());
    for (int i = 0; i < texts.size(); i++) {
      if (texts.get(i) == null) {
        v.setNull(i);
      } else {
        v.setSafe(i, texts.get(i).getBytes(StandardCharsets.UTF_8));
      }
    }
    v.setValueCount(texts.size());
    return v;
  }

  private static ScoringOptions options(Expected g) {
    return ScoringOptions.defaults()
        .withBos(g.prefix().equals("eos") ? Bos.EOS : Bos.NONE)
        .withWindow(g.window(), g.stride())
        .withTokenLogprobs(true)
        .withBatchTokens(256);
  }

  @Test
  void concurrentRequestsReproduceTheReference() throws Exception {
    Map<String, List<Expected>> groups =
        Refcases.expected(CASE).stream()
            .collect(Collectors.groupingBy(e -> e.window() + "/" + e.stride() + "/" + e.prefix()));
    ExecutorService tasks = Executors.newFixedThreadPool(groups.size());
    try (ScoringEngine engine =
            new ScoringEngine(model, tokenizer, ScoringEngine.QUEUE_TOKENS_DEFAULT, 0);
        BufferAllocator root = new RootAllocator()) {
      List<Future<Integer>> done = new ArrayList<>();
      for (List<Expected> group : groups.values()) {
        done.add(
            tasks.submit(
                () -> {
                  // each "task" sends its texts twice, with a null text in between: rows stay in
                  // order
                  List<String> in = new ArrayList<>();
                  group.forEach(e -> in.add(e.text()));
                  in.add(null);
                  group.forEach(e -> in.add(e.text()));
                  PerplexityScorer scorer = engine.scorer(options(group.get(0)));
                  try (BufferAllocator alloc = root.newChildAllocator("task", 0, Long.MAX_VALUE)) {
                    try (VarCharVector v = texts(alloc, in)) {
                      List<DocumentScore> r = engine.submit(v, scorer).scores();
                      assertEquals(in.size(), r.size());
                      for (int row = 0; row < in.size(); row++) {
                        DocumentScore s = r.get(row);
                        if (in.get(row) == null) {
                          assertEquals(Status.NULL_TEXT, s.status());
                          continue;
                        }
                        Expected e = group.get(row % (group.size() + 1));
                        assertEquals(e.nScored(), s.tokens(), e.key());
                        double[] got = s.tokenLogprobs();
                        assertEquals(e.nScored(), got.length, e.key());
                        for (int k = 0; e.tokenLogprobs() != null && k < e.nScored(); k++) {
                          assertEquals(
                              e.tokenLogprobs()[k],
                              got[k],
                              Refcases.TOKEN_TOL,
                              e.key() + " token " + k);
                        }
                        if (e.nScored() > 0) {
                          assertEquals(
                              e.meanNll(), s.nll() / s.tokens(), Refcases.MEAN_NLL_TOL, e.key());
                        }
                      }
                    }
                    assertEquals(
                        0, alloc.getAllocatedMemory(), "the request frees all it allocated");
                  }
                  return group.size();
                }));
      }
      for (Future<Integer> f : done) {
        assertTrue(f.get() > 0);
      }
      assertTrue(engine.stats().windows() > 0);
      assertTrue(engine.stats().paddedPositions() >= engine.stats().positions());
    } finally {
      tasks.shutdownNow();
    }
  }

  @Test
  void cancelledRequestsDoNotDisturbOthersAndTinyQueuesDoNotDeadlock() throws Exception {
    Expected e =
        Refcases.expected(CASE).stream().filter(x -> x.nScored() > 20).findFirst().orElseThrow();
    ScoringOptions o = options(e);
    ExecutorService tasks = Executors.newFixedThreadPool(4);
    // a queue bound below one request's tokens: requests enter one at a time, none waits forever
    try (ScoringEngine engine = new ScoringEngine(model, tokenizer, 1, 0);
        BufferAllocator root = new RootAllocator()) {
      PerplexityScorer scorer = engine.scorer(o);
      List<Future<Double>> futures = new ArrayList<>();
      for (int t = 0; t < 4; t++) {
        final int task = t;
        futures.add(
            tasks.submit(
                () -> {
                  try (BufferAllocator alloc = root.newChildAllocator("t", 0, Long.MAX_VALUE);
                      VarCharVector v = texts(alloc, Collections.nCopies(3, e.text()))) {
                    ScoreRequest r = engine.submit(v, scorer);
                    if (task == 0) {
                      r.cancel();
                      assertThrows(CancellationException.class, r::scores);
                      return null;
                    }
                    List<DocumentScore> s = r.scores();
                    assertEquals(
                        s.get(0).nll(), s.get(2).nll(), Refcases.BATCH_REL_NLL * s.get(0).nll());
                    return s.get(1).nll() / s.get(1).tokens();
                  }
                }));
      }
      assertNull(futures.get(0).get());
      for (int t = 1; t < 4; t++) {
        assertEquals(e.meanNll(), futures.get(t).get(), Refcases.MEAN_NLL_TOL);
      }
    } finally {
      tasks.shutdownNow();
    }
  }
}
