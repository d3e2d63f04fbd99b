package io.olmoppl.scoring;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.Device;
import io.olmoppl.batching.ScoringEngine;
import io.olmoppl.checkpoint.AttentionKind;
import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.checkpoint.CheckpointLayout;
import io.olmoppl.checkpoint.OlmoConfig;
import io.olmoppl.checkpoint.RopeParameters;
import io.olmoppl.checkpoint.TyingRule;
import io.olmoppl.checkpoint.writer.CheckpointMaker;
import io.olmoppl.model.OlmoModel;
import io.olmoppl.model.Precision;
import io.olmoppl.runtime.DjlSettings;
import io.olmoppl.testing.Refcases;
import io.olmoppl.tokenizer.OlmoTokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An Olmo 3-shaped random checkpoint (4 layers: 3 sliding with W = 4096, 1 full with YaRN factor 8
 * over 8192 of 65,536 positions; hidden 16) scores one 35,000-token document in ONE window of the
 * default length (the model's 65,536 positions) on CPU: status ok, and the same NLL at batch
 * budgets 4096 and 65536, which cut the engine's work differently. About a minute per budget on 2
 * busy cores, so it runs in the integration-test phase ({@code mvn verify}), not with the unit
 * tests.
 */
class LongWindowIT {
  private static final int TOKENS = 35_000;

  @TempDir Path tmp;

  @Test
  void oneLongWindowScoresAndDoesNotDependOnTheBatchBudget() throws Exception {
    DjlSettings.configure();
    Path dir = tmp.resolve("olmo3");
    CheckpointMaker maker =
        CheckpointMaker.small(CheckpointLayout.OLMO3).withDims(16, 4, 2, 1, 32, 65536);
    maker.write(dir, Refcases.dolma2Tokenizer());
    Checkpoint ckpt = Checkpoint.open(dir, TyingRule.STRICT);
    OlmoConfig c = ckpt.config();
    assertEquals(4096, c.attention().slidingWindow());
    assertEquals(3, c.attention().count(AttentionKind.SLIDING));
    assertEquals(RopeParameters.Type.YARN, c.attention().fullRope().type());
    assertEquals(8192, c.attention().fullRope().originalMaxPositions());

    SplittableRandom rnd = new SplittableRandom(5);
    long[] ids = new long[TOKENS];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = rnd.nextInt(100_000);
    }
    double[] nll = new double[2];
    int[] budgets = {4096, 65536};
    try (OlmoModel model = OlmoModel.load(ckpt, ckpt, Device.cpu(), Precision.FP32);
        OlmoTokenizer tok = OlmoTokenizer.load(ckpt.tokenizerJson());
        ScoringEngine engine = new ScoringEngine(model, tok)) {
      for (int i = 0; i < budgets.length; i++) {
        PerplexityScorer scorer =
            engine.scorer(ScoringOptions.defaults().withBatchTokens(budgets[i]));
        assertEquals(65536, scorer.window(), "default window = the model's positions");
        long t0 = System.nanoTime();
        DocumentScore s = engine.scoreIds(List.of(ids), new long[] {TOKENS}, scorer).get(0);
        double seconds = (System.nanoTime() - t0) / 1e9;
        assertEquals(Status.OK, s.status());
        assertEquals(1, s.windows(), "one window");
        assertEquals(TOKENS, s.tokens()); // the prefix token makes every text token a target
        nll[i] = s.nll();
        System.err.printf(
            "long window: %d tokens, batch tokens %d: nll %.9e in %.1f s, VmHWM %s%n",
            TOKENS, budgets[i], s.nll(), seconds, peakRss());
      }
    }
    assertEquals(nll[0], nll[1], Math.abs(nll[0]) * Refcases.BATCH_REL_NLL);
  }

  private static String peakRss() {
    try {
      return Files.readAllLines(Path.of("/proc/self/status")).stream()
          .filter(l -> l.startsWith("VmHWM"))
          .map(l -> l.substring(6).trim())
          .findFirst()
          .orElse("?");
    } catch (Exception e) {
      return "?";
    }
  }
}
