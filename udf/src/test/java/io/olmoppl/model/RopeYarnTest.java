package io.olmoppl.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import io.olmoppl.checkpoint.AttentionKind;
import io.olmoppl.checkpoint.AttentionSpec;
import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.checkpoint.RopeParameters;
import io.olmoppl.checkpoint.TyingRule;
import io.olmoppl.testing.Refcases;
import org.junit.jupiter.api.Test;

/**
 * YaRN's inverse frequencies ({@link Rope}) against values computed independently: case p05's
 * {@code dims.rope} (a float64 transcription of transformers 5.18 {@code _compute_yarn_parameters})
 * and the released Olmo 3 numbers of OLMO-FAMILY.md §2.4.
 */
class RopeYarnTest {
  private static final String CASE = "p05_olmo3_swa_yarn_bf16";

  @Test
  void p05RopeTablesMatchTheReference() {
    AttentionSpec a = Checkpoint.open(Refcases.dir(CASE), TyingRule.STRICT).config().attention();
    JsonObject rope = Refcases.json(CASE).getAsJsonObject("dims").getAsJsonObject("rope");
    int d = Refcases.json(CASE).getAsJsonObject("dims").get("head_dim").getAsInt();
    JsonObject full = rope.getAsJsonObject("full_attention");
    JsonObject sliding = rope.getAsJsonObject("sliding_attention");
    RopeParameters f = a.rope(AttentionKind.FULL);
    RopeParameters s = a.rope(AttentionKind.SLIDING);
    assertEquals(RopeParameters.Type.YARN, f.type());
    assertEquals(RopeParameters.Type.DEFAULT, s.type());
    assertEquals(full.get("attention_factor").getAsDouble(), f.attentionFactor(), 0.0);
    assertEquals(sliding.get("attention_factor").getAsDouble(), s.attentionFactor(), 0.0);
    assertArrayEquals(doubles(full.getAsJsonArray("ramp_low_high")), Rope.yarnLowHigh(f, d), 0.0);
    assertArrayEquals(doubles(full.getAsJsonArray("ramp")), Rope.yarnRamp(f, d), 1e-15);
    assertClose(doubles(full.getAsJsonArray("inv_freq")), Rope.inverseFrequencies(f, d), 1e-13);
    assertClose(doubles(sliding.getAsJsonArray("inv_freq")), Rope.inverseFrequencies(s, d), 1e-13);
  }

  @Test
  void releasedOlmo3YarnBoundsAndFrequencies() {
    // Olmo-3-1025-7B: head dim 128, theta 5e5, YaRN factor 8 over 8192, beta 32 / 1 (§2.4)
    RopeParameters yarn =
        new RopeParameters(
            500000.0,
            RopeParameters.Type.YARN,
            8.0,
            8192,
            32.0,
            1.0,
            RopeParameters.defaultAttentionFactor(8.0),
            true);
    assertArrayEquals(new double[] {18, 35}, Rope.yarnLowHigh(yarn, 128), 0.0);
    assertEquals(1.2079441541679836, yarn.attentionFactor(), 1e-15);
    double[] full = Rope.inverseFrequencies(yarn, 128);
    double[] plain = Rope.inverseFrequencies(RopeParameters.plain(500000.0), 128);
    assertEquals(0.014856, full[20], 5e-7);
    assertEquals(0.016560, plain[20], 5e-7);
    for (int j = 0; j <= 18; j++) {
      assertEquals(plain[j], full[j], 0.0, "pair " + j + " is kept");
    }
    for (int j = 35; j < 64; j++) {
      assertEquals(plain[j] / 8, full[j], plain[j] * 1e-15, "pair " + j + " is divided by 8");
    }
  }

  private static double[] doubles(JsonArray a) {
    double[] v = new double[a.size()];
    for (int i = 0; i < v.length; i++) {
      v[i] = a.get(i).getAsDouble();
    }
    return v;
  }

  private static void assertClose(double[] want, double[] got, double rel) {
    assertEquals(want.length, got.length);
    for (int i = 0; i < want.length; i++) {
      assertEquals(want[i], got[i], Math.abs(want[i]) * rel, "inv_freq[" + i + "]");
    }
  }
}
