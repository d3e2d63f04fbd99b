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

  @Test
  void progressIsCountedAfterEveryBatchNotPerRequest() throws Exception {
    // 2,000 documents in requests of 256 (as a Spark task sends its chunks, two in flight): the
    // counts move with each forward batch, long before a request's scores are back, and add up to
    // the documents, their scored targets and bytes
    java.util.Random rnd = new java.util.Random(11);
    String[] words = "the of and to in a is that for it as was with be by on not".split(" ");
    List<String> docs = new ArrayList<>();
    for (int i = 0; i < 2000; i++) {
      StringBuilder t = new StringBuilder();
      for (int w = 0, n = 2 + rnd.nextInt(25); w < n; w++) {
        t.append(w == 0 ? "" : " ").append(words[rnd.nextInt(words.length)]);
      }
      docs.add(i % 500 == 7 ? null : i % 500 == 8 ? "" : t.toString());
    }
    long[] total = new long[3];
    List<long[]> seen = new ArrayList<>(); // the running totals after each call
    List<Integer> callsBeforeDone = new ArrayList<>();
    ScoringOptions o = ScoringOptions.defaults().withBos(Bos.EOS).withBatchTokens(256);
    long tokens = 0;
    long bytes = 0;
    try (ScoringEngine engine = new ScoringEngine(model, tokenizer);
        BufferAllocator root = new RootAllocator()) {
      PerplexityScorer scorer = engine.scorer(o);
      List<ScoreRequest> inFlight = new ArrayList<>();
      List<VarCharVector> vectors = new ArrayList<>();
      List<int[]> calls = new ArrayList<>();
      for (int from = 0; from < docs.size() || !inFlight.isEmpty(); ) {
        while (inFlight.size() < 2 && from < docs.size()) {
          VarCharVector v = texts(root, docs.subList(from, Math.min(docs.size(), from + 256)));
          int[] n = new int[1];
          BatchProgress p =
              (d, t, b) -> {
                synchronized (seen) {
                  n[0]++;
                  total[0] += d;
                  total[1] += t;
                  total[2] += b;
                  seen.add(total.clone());
                }
              };
          inFlight.add(engine.submit(v, scorer, p));
          vectors.add(v);
          calls.add(n);
          from += v.getValueCount();
        }
        List<DocumentScore> r = inFlight.remove(0).scores();
        synchronized (seen) {
          callsBeforeDone.add(calls.remove(0)[0]);
        }
        vectors.remove(0).close();
        for (DocumentScore s : r) {
          tokens += s.tokens();
          bytes += s.bytes();
        }
      }
      assertEquals(0, root.getAllocatedMemory());
    }
    assertEquals(2000, total[0], "every document is counted once");
    assertEquals(tokens, total[1], "every scored target is counted once");
    assertEquals(bytes, total[2], "and every document's bytes");
    assertEquals(8, callsBeforeDone.size());
    for (int c : callsBeforeDone) {
      assertTrue(c >= 5, "a request of 256 documents hears of several batches: " + callsBeforeDone);
    }
    for (int i = 1; i < seen.size(); i++) {
      long[] a = seen.get(i - 1);
      long[] b = seen.get(i);
      assertTrue(b[0] >= a[0] && b[1] >= a[1] && (b[0] > a[0] || b[1] > a[1]), "calls report news");
    }
    long distinctBeforeEnd =
        seen.stream().filter(v -> v[0] < 2000).map(v -> v[0]).distinct().count();
    assertTrue(distinctBeforeEnd >= 40, distinctBeforeEnd + " distinct document counts");
  }
}
