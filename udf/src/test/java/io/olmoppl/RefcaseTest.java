package io.olmoppl;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import io.olmoppl.batching.ScoringEngine;
import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.checkpoint.TyingRule;
import io.olmoppl.model.OlmoModel;
import io.olmoppl.model.Precision;
import io.olmoppl.runtime.DjlSettings;
import io.olmoppl.scoring.DocumentScore;
import io.olmoppl.scoring.PerplexityScorer;
import io.olmoppl.testing.Refcases;
import io.olmoppl.testing.Refcases.Expected;
import io.olmoppl.tokenizer.OlmoTokenizer;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every reference case, every text, every (L, S, prefix): token ids, counts, per-token log-probs,
 * sums.
 */
class RefcaseTest {
  static List<String> cases() {
    return Refcases.names();
  }

  @ParameterizedTest
  @MethodSource("cases")
  void reproducesReferenceThroughPublicApi(String name) throws InterruptedException {
    DjlSettings.configure();
    Checkpoint ckpt = Checkpoint.open(Refcases.dir(name), TyingRule.STRICT);
    List<Expected> all = Refcases.expected(name);
    try (OlmoModel model = OlmoModel.load(ckpt, ckpt, Device.cpu(), Precision.FP32);
        OlmoTokenizer tok = OlmoTokenizer.load(ckpt.tokenizerJson());
        ScoringEngine engine = new ScoringEngine(model, tok)) {
      for (Expected e : all) {
        assertArrayEquals(e.ids(), tok.encode(e.text()), name + "/" + e.key() + ": token ids");
      }
      double worstToken = 0;
      double worstMean = 0;
      for (List<Expected> group : Refcases.groups(name)) {
        PerplexityScorer scorer =
            engine.scorer(Refcases.options(group.get(0)).withBatchTokens(512));
        List<DocumentScore> got = engine.score(group.stream().map(Expected::text).toList(), scorer);
        for (int i = 0; i < group.size(); i++) {
          Expected e = group.get(i);
          DocumentScore s = got.get(i);
          String where =
              name
                  + "/"
                  + e.key()
                  + " L="
                  + e.window()
                  + " S="
                  + e.stride()
                  + " prefix="
                  + e.prefix();
          assertEquals(e.nScored(), s.tokens(), where + ": scored targets");
          assertEquals(e.windows(), s.windows(), where + ": windows");
          if (e.tokenLogprobs() != null) {
            assertEquals(e.tokenLogprobs().length, s.tokenLogprobs().length, where);
            for (int k = 0; k < e.tokenLogprobs().length; k++) {
              double d = Math.abs(e.tokenLogprobs()[k] - s.tokenLogprobs()[k]);
              worstToken = Math.max(worstToken, d);
              assertTrue(
                  d <= Refcases.TOKEN_TOL,
                  where
                      + ": token "
                      + k
                      + " log p "
                      + s.tokenLogprobs()[k]
                      + " vs reference "
                      + e.tokenLogprobs()[k]);
            }
          }
          if (e.nScored() == 0) {
            assertEquals(0.0, s.nll(), where);
            assertNull(s.perplexity(), where);
            assertNull(s.bitsPerByte(), where);
          } else {
            double mean = s.nll() / s.tokens();
            worstMean = Math.max(worstMean, Math.abs(mean - e.meanNll()));
            assertEquals(e.meanNll(), mean, Refcases.MEAN_NLL_TOL, where + ": mean NLL");
            assertNotNull(s.perplexity());
            assertEquals(e.ppl(), s.perplexity(), e.ppl() * 1e-5, where + ": perplexity");
            assertEquals(
                e.bitsPerByte(),
                s.bitsPerByte(),
                Math.abs(e.bitsPerByte()) * 1e-5,
                where + ": bpb");
          }
        }
      }
      assertTrue(worstToken < Refcases.TOKEN_TOL && worstMean < Refcases.MEAN_NLL_TOL);
      System.err.printf(
          "refcase %s: max |d log p| %.2e, max |d mean NLL| %.2e over %d results%n",
          name, worstToken, worstMean, all.size());
    }
  }
}
