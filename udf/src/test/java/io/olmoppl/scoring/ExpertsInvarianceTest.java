package io.olmoppl.scoring;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.olmoppl.batching.ScoringEngine;
import io.olmoppl.model.OlmoModel;
import io.olmoppl.testing.Refcases;
import io.olmoppl.tokenizer.OlmoTokenizer;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Batch independence with a mixture of experts (reference cases p06 OLMoE and p07 FlexOlmo): the
 * routing is per token, so a document's score is the same scored alone, packed with one set of
 * companions, with another, and one window per batch, within the bounds of {@link Refcases}
 * (BATCH_REL_NLL on the document's NLL, BATCH_ABS_TOKEN per token).
 */
class ExpertsInvarianceTest {
  private static long[] randomIds(long seed, int n, int vocab) {
    SplittableRandom rnd = new SplittableRandom(seed);
    long[] t = new long[n];
    for (int i = 0; i < n; i++) {
      t[i] = rnd.nextInt(vocab);
    }
    return t;
  }

  private static long[] bytesFor(List<long[]> docs) {
    long[] b = new long[docs.size()];
    for (int i = 0; i < b.length; i++) {
      b[i] = 3L * docs.get(i).length + 1;
    }
    return b;
  }

  private static void assertSame(DocumentScore want, DocumentScore got, String what) {
    assertEquals(want.tokens(), got.tokens(), what + ": tokens");
    assertEquals(want.windows(), got.windows(), what + ": windows");
    assertEquals(Status.OK, got.status(), what);
    for (int i = 0; i < want.tokenLogprobs().length; i++) {
      assertEquals(
          want.tokenLogprobs()[i],
          got.tokenLogprobs()[i],
          Refcases.BATCH_ABS_TOKEN,
          what + ": token " + i);
    }
    assertEquals(want.nll(), got.nll(), Refcases.BATCH_REL_NLL * want.nll(), what + ": nll");
  }

  @ParameterizedTest
  @ValueSource(strings = {"p06_olmoe_f16", "p07_flex_olmo_bf16"})
  void documentScoreDoesNotDependOnItsCompanions(String name) throws InterruptedException {
    try (OlmoModel model = Refcases.cpuModel(name);
        OlmoTokenizer tok = OlmoTokenizer.load(Refcases.dir(name).resolve("tokenizer.json"));
        ScoringEngine engine = new ScoringEngine(model, tok)) {
      int vocab = 50000;
      long[] doc = randomIds(1, 300, vocab); // two windows at L = 256
      List<long[]> first = List.of(randomIds(2, 40, vocab), doc, randomIds(3, 200, vocab));
      List<long[]> second =
          List.of(
              randomIds(4, 7, vocab),
              randomIds(5, 500, vocab),
              randomIds(6, 90, vocab),
              randomIds(7, 3, vocab),
              doc);
      PerplexityScorer packed =
          engine.scorer(
              ScoringOptions.defaults()
                  .withBos(Bos.EOS)
                  .withTokenLogprobs(true)
                  .withBatchTokens(1024));
      PerplexityScorer oneWindow =
          engine.scorer(
              ScoringOptions.defaults()
                  .withBos(Bos.EOS)
                  .withTokenLogprobs(true)
                  .withBatchTokens(1));
      List<long[]> alone = List.<long[]>of(doc);
      DocumentScore want = engine.scoreIds(alone, bytesFor(alone), packed).get(0);
      assertEquals(300, want.tokens());
      assertEquals(2, want.windows());
      assertTrue(Double.isFinite(want.nll()) && want.nll() > 0);
      assertSame(want, engine.scoreIds(first, bytesFor(first), packed).get(1), name + " first");
      assertSame(want, engine.scoreIds(second, bytesFor(second), packed).get(4), name + " second");
      List<DocumentScore> apart = engine.scoreIds(second, bytesFor(second), oneWindow);
      List<DocumentScore> together = engine.scoreIds(second, bytesFor(second), packed);
      for (int i = 0; i < second.size(); i++) {
        assertSame(apart.get(i), together.get(i), name + " doc " + i + " packed vs one window");
      }
    }
  }
}
