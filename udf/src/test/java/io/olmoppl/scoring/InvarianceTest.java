package io.olmoppl.scoring;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import io.olmoppl.batching.ScoringEngine;
import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.checkpoint.TyingRule;
import io.olmoppl.model.OlmoModel;
import io.olmoppl.model.Precision;
import io.olmoppl.model.Window;
import io.olmoppl.runtime.DjlSettings;
import io.olmoppl.testing.Refcases;
import io.olmoppl.tokenizer.OlmoTokenizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Properties of scoring on reference case p04 (GQA, F16 weights, 128 positions): batch and
 * permutation invariance, the window contract (see {@link #contractWindows}; checked against
 * lm-evaluation-harness's rolling windows for S = L), causality, and {@link WindowPlan} on small
 * arrays. Scores go through {@link ScoringEngine}, the driver production uses.
 */
class InvarianceTest {
  /**
   * Per-token tolerance; document sums get the same tolerance per scored token (float32 log-probs
   * summed).
   */
  private static final double TOL = 1e-5;

  private static Checkpoint ckpt;
  private static OlmoModel model;
  private static OlmoTokenizer tokenizer;
  private static ScoringEngine engine;

  @BeforeAll
  static void load() {
    DjlSettings.configure();
    ckpt = Checkpoint.open(Refcases.dir("p04_olmo_untied_gqa_f16"), TyingRule.STRICT);
    model = OlmoModel.load(ckpt, ckpt, Device.cpu(), Precision.FP32);
    tokenizer = OlmoTokenizer.load(ckpt.tokenizerJson());
    engine = new ScoringEngine(model, tokenizer);
  }

  @AfterAll
  static void close() {
    if (engine != null) {
      engine.close();
    }
    if (tokenizer != null) {
      tokenizer.close();
    }
    if (model != null) {
      model.close();
    }
  }

  private static long[] randomIds(long seed, int n) {
    SplittableRandom rnd = new SplittableRandom(seed);
    long[] t = new long[n];
    for (int i = 0; i < n; i++) {
      t[i] = rnd.nextInt(50280);
    }
    return t;
  }

  private static long[] bytesFor(List<long[]> docs) {
    long[] b = new long[docs.size()];
    for (int i = 0; i < b.length; i++) {
      b[i] = docs.get(i) == null ? 0 : 3L * docs.get(i).length + 1;
    }
    return b;
  }

  /** Scoring through the engine, the one driver, with one set of options. */
  private record Scoring(PerplexityScorer plan) {
    List<DocumentScore> scoreIds(List<long[]> ids, long[] bytes) {
      try {
        return engine.scoreIds(ids, bytes, plan);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(e);
      }
    }

    List<DocumentScore> score(List<String> texts) {
      try {
        return engine.score(texts, plan);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(e);
      }
    }
  }

  private static Scoring scorer(int window, int stride, int batchTokens, Bos bos) {
    return new Scoring(
        engine.scorer(
            ScoringOptions.defaults()
                .withBos(bos)
                .withWindow(window, stride)
                .withTokenLogprobs(true)
                .withBatchTokens(batchTokens)));
  }

  private static void assertSameScore(DocumentScore want, DocumentScore got, String what) {
    assertEquals(want.tokens(), got.tokens(), what + ": tokens");
    assertEquals(want.windows(), got.windows(), what + ": windows");
    assertEquals(want.status(), got.status(), what + ": status");
    assertEquals(
        want.tokenLogprobs().length, got.tokenLogprobs().length, what + ": token log-probs");
    for (int i = 0; i < want.tokenLogprobs().length; i++) {
      assertEquals(want.tokenLogprobs()[i], got.tokenLogprobs()[i], TOL, what + ": token " + i);
    }
    assertEquals(want.nll(), got.nll(), TOL * Math.max(1, want.tokens()), what + ": nll");
  }

  // ---------------------------------------------------------------------------------------------------------------
  // (a) batch invariance

  @ParameterizedTest(name = "L={0} S={1}")
  @CsvSource({"16, 16", "16, 5", "128, 128"})
  void documentScoreDoesNotDependOnBatchCompanions(int window, int stride) {
    long[] a = randomIds(1, 45);
    // lengths around the window: 1 to 3 windows each; the last one needs 2 windows even at L = 128
    List<long[]> others =
        List.of(
            randomIds(2, 3),
            randomIds(3, 60),
            randomIds(4, 17),
            randomIds(5, 1),
            new long[0],
            randomIds(6, window == 128 ? 130 : 33));
    Scoring small = scorer(window, stride, 48, Bos.EOS); // several short windows share each batch
    DocumentScore alone = small.scoreIds(List.<long[]>of(a), bytesFor(List.of(a))).get(0);
    assertEquals(45, alone.tokens(), "with an EOS prefix every text token is scored");
    assertTrue(Double.isFinite(alone.nll()) && alone.nll() > 0);

    List<long[]> batch = new ArrayList<>();
    batch.add(others.get(0));
    batch.add(others.get(1));
    batch.add(a);
    batch.addAll(others.subList(2, others.size()));
    List<DocumentScore> inBatch = small.scoreIds(batch, bytesFor(batch));
    assertSameScore(alone, inBatch.get(2), "doc inside a mixed batch");

    // one batch holding everything (logits chunked over more rows) vs one window per batch
    Scoring big = scorer(window, stride, 1 << 16, Bos.EOS);
    Scoring single = scorer(window, stride, window, Bos.EOS); // one window per batch
    List<DocumentScore> allInOne = big.scoreIds(batch, bytesFor(batch));
    List<DocumentScore> oneByOne = single.scoreIds(batch, bytesFor(batch));
    for (int i = 0; i < batch.size(); i++) {
      assertSameScore(
          oneByOne.get(i), allInOne.get(i), "doc " + i + " one batch vs one window per batch");
      assertSameScore(
          oneByOne.get(i), inBatch.get(i), "doc " + i + " batchTokens 48 vs one window per batch");
    }

    // permutation of the documents permutes the results
    List<long[]> reversed = new ArrayList<>(batch);
    java.util.Collections.reverse(reversed);
    List<DocumentScore> rev = small.scoreIds(reversed, bytesFor(reversed));
    for (int i = 0; i < batch.size(); i++) {
      assertSameScore(
          inBatch.get(i), rev.get(batch.size() - 1 - i), "doc " + i + " after reversing the batch");
    }
  }

  @Test
  void manyWindowsInOneBatchSpanSeveralLogitChunks() {
    // 12 full windows of 128 targets = 1536 scored rows in one batch, more than one 64 MiB logit
    // chunk (333 rows at
    // 50304 columns): results must equal scoring each window alone
    List<long[]> docs = new ArrayList<>();
    for (int i = 0; i < 12; i++) {
      docs.add(randomIds(100 + i, 127 + i % 3));
    }
    List<DocumentScore> together =
        scorer(128, 128, 1 << 16, Bos.EOS).scoreIds(docs, bytesFor(docs));
    List<DocumentScore> apart = scorer(128, 128, 1, Bos.EOS).scoreIds(docs, bytesFor(docs));
    for (int i = 0; i < docs.size(); i++) {
      assertSameScore(apart.get(i), together.get(i), "doc " + i);
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // (b) window contract

  /**
   * The window contract, per target: target x[i] (1 <= i <= n-1) belongs to block 0 if i <= L, else
   * to block 1 + (i - L - 1) / S; a block whose last target is x[e] is predicted from x[max(0, e-L)
   * .. e-1] (the strided sliding window of transformers' docs/source/en/perplexity.md; with S = L,
   * lm-evaluation-harness's rolling windows).
   */
  static List<Window> contractWindows(long[] x, int l, int s) {
    int n = x.length;
    List<int[]> blocks = new ArrayList<>(); // {first target, last target}
    for (int i = 1; i <= n - 1; i++) {
      int block = i <= l ? 0 : 1 + (i - l - 1) / s;
      if (block == blocks.size()) {
        blocks.add(new int[] {i, i});
      } else {
        blocks.get(block)[1] = i;
      }
    }
    List<Window> out = new ArrayList<>();
    for (int[] b : blocks) {
      int e = b[1];
      int a = Math.max(0, e - l);
      // window tokens x[a..e]: position j predicts x[a + j + 1], so target x[b0] is at position b0
      // - 1 - a
      out.add(new Window(Arrays.copyOfRange(x, a, e + 1), b[0] - 1 - a));
    }
    return out;
  }

  /**
   * lm-eval's {@code get_rolling_token_windows(token_list, prefix_token, max_seq_len=L,
   * context_len=1)} followed by {@code make_disjoint_window}, and the model input {@code (context +
   * continuation)[-(L+1):][:-1]} scoring the last {@code len(continuation)} positions
   * (lm-evaluation-harness {@code lm_eval/utils.py} and {@code loglikelihood_rolling} in {@code
   * lm_eval/models/huggingface.py}).
   */
  static List<Window> lmEvalRollingWindows(long[] tokens, long prefix, int l) {
    List<Window> out = new ArrayList<>();
    int n = tokens.length;
    if (n == 0) {
      return out;
    }
    int predLen = l; // max_seq_len - context_len + 1
    int firstSeqLen = Math.min(l, n);
    long[] ctx = new long[firstSeqLen];
    ctx[0] = prefix;
    System.arraycopy(tokens, 0, ctx, 1, firstSeqLen - 1);
    out.add(lmEvalInput(ctx, Arrays.copyOfRange(tokens, 0, firstSeqLen), l));
    int predicted = firstSeqLen;
    while (predicted < n) {
      int windowPredLen = Math.min(n - predicted, predLen);
      int windowEnd = predicted + windowPredLen;
      long[] in = Arrays.copyOfRange(tokens, windowEnd - l - 1, windowEnd - 1);
      out.add(lmEvalInput(in, Arrays.copyOfRange(tokens, windowEnd - windowPredLen, windowEnd), l));
      predicted += windowPredLen;
    }
    return out;
  }

  private static Window lmEvalInput(long[] input, long[] cont, int l) {
    long[] context = Arrays.copyOf(input, input.length - (cont.length - 1)); // make_disjoint_window
    long[] all = new long[context.length + cont.length];
    System.arraycopy(context, 0, all, 0, context.length);
    System.arraycopy(cont, 0, all, context.length, cont.length);
    long[] seq =
        Arrays.copyOfRange(all, Math.max(0, all.length - (l + 1)), all.length); // [-(L+1):]
    return new Window(seq, seq.length - 1 - cont.length); // logits of the last len(cont) positions
  }

  private static double[] runWindows(List<Window> windows) {
    List<Double> lps = new ArrayList<>();
    for (Window w : windows) {
      try (NDManager bm = model.newBatchManager()) {
        for (float v : model.logProbs(bm, List.of(w))[0]) {
          lps.add((double) v);
        }
      }
    }
    return lps.stream().mapToDouble(Double::doubleValue).toArray();
  }

  private static long[] fed(long prefix, long[] t) {
    if (prefix < 0) {
      return t;
    }
    long[] x = new long[t.length + 1];
    x[0] = prefix;
    System.arraycopy(t, 0, x, 1, t.length);
    return x;
  }

  @ParameterizedTest(name = "N={0} L={1} S={2} bos={3}")
  @CsvSource({
    "50, 16, 16, EOS",
    "50, 16, 16, NONE",
    "48, 16, 16, EOS",
    "47, 16, 16, NONE",
    "15, 16, 16, EOS",
    "50, 16, 7, EOS",
    "50, 16, 7, NONE",
    "40, 16, 1, EOS",
    "16, 16, 4, EOS",
    "2, 16, 3, NONE",
    "1, 16, 16, NONE"
  })
  void scorerFollowsWindowContract(int nTokens, int l, int s, Bos bos) {
    long[] t = randomIds(1000L + nTokens * 31L + s, nTokens);
    long prefix = PerplexityScorer.prefixToken(model.config(), bos);
    assertEquals(bos == Bos.NONE ? -1 : 50279, prefix);
    long[] x = fed(prefix, t);
    int n = x.length;

    DocumentScore got = scorer(l, s, 64, bos).scoreIds(List.<long[]>of(t), new long[] {10}).get(0);
    List<Window> contract = contractWindows(x, l, s);
    double[] want = runWindows(contract);

    assertEquals(Math.max(0, n - 1), got.tokens(), "every target x[1..n-1] is scored exactly once");
    assertEquals(want.length, got.tokens());
    assertEquals(contract.size(), got.windows(), "windows");
    for (Window w : contract) {
      assertTrue(w.inputLength() <= l, "a window holds at most L inputs");
    }
    double nll = 0;
    for (int i = 0; i < want.length; i++) {
      assertEquals(want[i], got.tokenLogprobs()[i], TOL, "target " + (i + 1));
      nll -= want[i];
    }
    assertEquals(nll, got.nll(), TOL * Math.max(1, want.length), "nll = sum of the windows");
    if (got.tokens() == 0) {
      assertEquals(0.0, got.nll());
      assertNull(got.perplexity());
      assertEquals(Status.TOO_SHORT, got.status());
    } else {
      assertEquals(Math.exp(got.nll() / got.tokens()), got.perplexity(), 1e-9 * got.perplexity());
    }

    if (s == l && bos == Bos.EOS) {
      // with S = L the contract is lm-eval's loglikelihood_rolling, window for window
      List<Window> lmEval = lmEvalRollingWindows(t, prefix, l);
      assertEquals(contract.size(), lmEval.size(), "lm-eval window count");
      for (int i = 0; i < lmEval.size(); i++) {
        assertArrayEquals(
            lmEval.get(i).tokens(), contract.get(i).tokens(), "window " + i + " tokens");
        assertEquals(
            lmEval.get(i).firstScored(),
            contract.get(i).firstScored(),
            "window " + i + " first scored");
      }
      double[] viaLmEval = runWindows(lmEval);
      for (int i = 0; i < viaLmEval.length; i++) {
        assertEquals(viaLmEval[i], got.tokenLogprobs()[i], TOL, "lm-eval target " + i);
      }
    }
  }

  @Test
  void stridedWindowsSeeMoreContextThanDisjointOnes() {
    // the same document under S = L and S < L: the first block is identical, later targets differ
    // (more context)
    long[] t = randomIds(77, 60);
    DocumentScore disjoint =
        scorer(16, 16, 64, Bos.EOS).scoreIds(List.<long[]>of(t), new long[] {1}).get(0);
    DocumentScore strided =
        scorer(16, 4, 64, Bos.EOS).scoreIds(List.<long[]>of(t), new long[] {1}).get(0);
    assertEquals(disjoint.tokens(), strided.tokens());
    for (int i = 0; i < 16; i++) {
      assertEquals(
          disjoint.tokenLogprobs()[i], strided.tokenLogprobs()[i], TOL, "first block target " + i);
    }
    double maxDiff = 0;
    for (int i = 16; i < t.length; i++) {
      maxDiff =
          Math.max(maxDiff, Math.abs(disjoint.tokenLogprobs()[i] - strided.tokenLogprobs()[i]));
    }
    assertTrue(
        maxDiff > 1e-3, "later targets must depend on how much context their window carries");
    assertEquals(4, disjoint.windows());
    assertEquals(1 + (61 - 1 - 16 + 3) / 4, strided.windows());
  }

  @Test
  void textScoringEqualsIdScoring() {
    String text = "The quick brown fox jumps over the lazy dog. 1234 ümlaut ✓";
    long[] ids = tokenizer.encode(text);
    Scoring sc = scorer(8, 3, 64, Bos.EOS);
    DocumentScore viaText = sc.score(List.of(text)).get(0);
    DocumentScore viaIds =
        sc.scoreIds(
                List.<long[]>of(ids),
                new long[] {text.getBytes(java.nio.charset.StandardCharsets.UTF_8).length})
            .get(0);
    assertSameScore(viaIds, viaText, "text vs ids");
    assertEquals(text.getBytes(java.nio.charset.StandardCharsets.UTF_8).length, viaText.bytes());
  }

  // ---------------------------------------------------------------------------------------------------------------
  // (c) causality

  @Test
  void logProbsOfEarlierTargetsIgnoreAppendedTokens() {
    long[] full = randomIds(500, 40);
    int k = 12; // targets x[1..k]
    try (NDManager bm = model.newBatchManager()) {
      float[] prefixOnly =
          model.logProbs(bm, List.of(new Window(Arrays.copyOf(full, k + 1), 0)))[0];
      assertEquals(k, prefixOnly.length);
      for (int extra : new int[] {1, 5, 27}) {
        float[] longer =
            model.logProbs(bm, List.of(new Window(Arrays.copyOf(full, k + 1 + extra), 0)))[0];
        assertEquals(k + extra, longer.length);
        for (int i = 0; i < k; i++) {
          assertEquals(
              prefixOnly[i], longer[i], TOL, "target " + i + " with " + extra + " tokens appended");
        }
      }
      // a different continuation after position k leaves the first k targets alone as well
      long[] other = Arrays.copyOf(full, full.length);
      long[] tail = randomIds(501, other.length - k - 1);
      System.arraycopy(tail, 0, other, k + 1, tail.length);
      float[] a = model.logProbs(bm, List.of(new Window(full, 0)))[0];
      float[] b = model.logProbs(bm, List.of(new Window(other, 0)))[0];
      for (int i = 0; i < k; i++) {
        assertEquals(a[i], b[i], TOL, "target " + i + " under a different continuation");
      }
      double later = 0;
      for (int i = k + 1; i < a.length; i++) {
        later = Math.max(later, Math.abs(a[i] - b[i]));
      }
      assertTrue(later > 1e-3, "targets after the change must see it");
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // (d) WindowPlan on small arrays

  private static long[] seq(int n) {
    long[] x = new long[n];
    for (int i = 0; i < n; i++) {
      x[i] = 100 + i;
    }
    return x;
  }

  private static void assertPlan(List<Window> want, List<Window> got, String what) {
    assertEquals(want.size(), got.size(), what + ": number of windows");
    for (int i = 0; i < want.size(); i++) {
      assertArrayEquals(
          want.get(i).tokens(), got.get(i).tokens(), what + ": window " + i + " tokens");
      assertEquals(
          want.get(i).firstScored(),
          got.get(i).firstScored(),
          what + ": window " + i + " firstScored");
    }
  }

  @Test
  void windowPlanHandWrittenCases() {
    assertTrue(WindowPlan.plan(seq(0), 4, 4).isEmpty(), "n=0: no target");
    assertTrue(WindowPlan.plan(seq(1), 4, 4).isEmpty(), "n=1: no target");
    assertPlan(List.of(new Window(seq(2), 0)), WindowPlan.plan(seq(2), 4, 4), "n=2");
    assertPlan(List.of(new Window(seq(2), 0)), WindowPlan.plan(seq(2), 1, 1), "n=2 L=1");
    // L = S = 3, n = 8 (x = 100..107): blocks {1..3}, {4..6}, {7}
    assertPlan(
        List.of(
            new Window(new long[] {100, 101, 102, 103}, 0),
            new Window(new long[] {103, 104, 105, 106}, 0),
            new Window(new long[] {104, 105, 106, 107}, 2)),
        WindowPlan.plan(seq(8), 3, 3),
        "L=S=3 n=8");
    // S = 1 < L = 3, n = 6: blocks {1..3}, {4}, {5}
    assertPlan(
        List.of(
            new Window(new long[] {100, 101, 102, 103}, 0),
            new Window(new long[] {101, 102, 103, 104}, 2),
            new Window(new long[] {102, 103, 104, 105}, 2)),
        WindowPlan.plan(seq(6), 3, 1),
        "L=3 S=1 n=6");
    // S = 2 < L = 4, n = 9: blocks {1..4}, {5,6}, {7,8}
    assertPlan(
        List.of(
            new Window(new long[] {100, 101, 102, 103, 104}, 0),
            new Window(new long[] {102, 103, 104, 105, 106}, 2),
            new Window(new long[] {104, 105, 106, 107, 108}, 2)),
        WindowPlan.plan(seq(9), 4, 2),
        "L=4 S=2 n=9");
    // L = S = 1: one target per window, one token of context
    assertPlan(
        List.of(
            new Window(new long[] {100, 101}, 0),
            new Window(new long[] {101, 102}, 0),
            new Window(new long[] {102, 103}, 0)),
        WindowPlan.plan(seq(4), 1, 1),
        "L=S=1 n=4");
    // the sequence fits in one window
    assertPlan(List.of(new Window(seq(5), 0)), WindowPlan.plan(seq(5), 8, 2), "n-1 < L");
    assertPlan(List.of(new Window(seq(5), 0)), WindowPlan.plan(seq(5), 4, 4), "n-1 = L");
  }

  @Test
  void windowPlanEqualsContractTranscription() {
    for (int n = 0; n <= 40; n++) {
      long[] x = seq(n);
      for (int l = 1; l <= 9; l++) {
        for (int s = 1; s <= l; s++) {
          String what = "n=" + n + " L=" + l + " S=" + s;
          List<Window> got = WindowPlan.plan(x, l, s);
          assertPlan(contractWindows(x, l, s), got, what);
          int[] scored = new int[n];
          for (Window w : got) {
            assertTrue(w.inputLength() <= l, what + ": at most L inputs");
            int a = (int) (w.tokens()[0] - 100);
            for (int j = w.firstScored(); j < w.inputLength(); j++) {
              scored[a + j + 1]++;
            }
            if (a + w.inputLength() > l) {
              assertTrue(
                  w.firstScored() >= l - s,
                  what + ": at least L-S+1 tokens of context after the first window");
            }
          }
          for (int i = 1; i < n; i++) {
            assertEquals(1, scored[i], what + ": target " + i + " scored exactly once");
          }
        }
      }
    }
  }
}
