package io.olmoppl.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.olmoppl.testing.Refcases;
import java.io.IOException;
import java.nio.file.Files;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Olmo 3 configs in the three rope forms of OLMO-FAMILY.md §2.5, layer kinds, head_dim, and the
 * refusal of olmo_hybrid before any work.
 */
class Olmo3ConfigTest {
  private static final AttentionKind S = AttentionKind.SLIDING;
  private static final AttentionKind F = AttentionKind.FULL;

  private static JsonObject p05() throws IOException {
    return JsonParser.parseString(
            Files.readString(Refcases.dir("p05_olmo3_swa_yarn_bf16").resolve("config.json")))
        .getAsJsonObject();
  }

  private static JsonObject yarn() {
    JsonObject y = new JsonObject();
    y.addProperty("rope_type", "yarn");
    y.addProperty("factor", 2.0);
    y.addProperty("original_max_position_embeddings", 256);
    y.addProperty("beta_fast", 32.0);
    y.addProperty("beta_slow", 1.0);
    y.addProperty("attention_factor", 1.0693147180559945);
    return y;
  }

  @Test
  void legacyRopeScalingGoesOnFullLayersOnly() throws IOException {
    OlmoConfig c = OlmoConfig.fromJson(p05(), "p05");
    assertEquals(CheckpointLayout.OLMO3, c.layout());
    AttentionSpec a = c.attention();
    assertEquals(List.of(S, S, S, F), a.kinds());
    assertEquals(24, a.slidingWindow());
    assertEquals(RopeParameters.Type.YARN, a.fullRope().type());
    assertEquals(2.0, a.fullRope().factor());
    assertEquals(256, a.fullRope().originalMaxPositions());
    assertEquals(RopeParameters.plain(500000.0), a.slidingRope());
    assertEquals("sliding \u00d73, full \u00d71", a.describeKinds());
    assertTrue(c.warnings().isEmpty(), c.warnings().toString());
  }

  @Test
  void nestedAndFlatRopeParametersReadAsTheLegacyForm() throws IOException {
    AttentionSpec legacy = OlmoConfig.fromJson(p05(), "p05").attention();
    JsonObject nested = p05();
    nested.remove("rope_scaling");
    nested.remove("rope_theta");
    JsonObject per = new JsonObject();
    JsonObject full = yarn();
    full.addProperty("rope_theta", 500000.0);
    per.add("full_attention", full);
    JsonObject plain = new JsonObject();
    plain.addProperty("rope_type", "default");
    plain.addProperty("rope_theta", 500000.0);
    per.add("sliding_attention", plain);
    nested.add("rope_parameters", per);
    OlmoConfig n = OlmoConfig.fromJson(nested, "nested");
    assertEquals(legacy, n.attention());
    assertTrue(n.warnings().isEmpty());

    JsonObject flat = p05();
    flat.remove("rope_scaling");
    JsonObject f = yarn();
    f.addProperty("rope_theta", 500000.0);
    flat.add("rope_parameters", f);
    OlmoConfig fl = OlmoConfig.fromJson(flat, "flat");
    assertEquals(legacy, fl.attention(), "flat YaRN: on the full layers only");
    assertEquals(1, fl.warnings().size());
    assertTrue(fl.warnings().get(0).contains("full-attention layers only"));
  }

  @Test
  void yarnOnSlidingLayersAndUnknownRopeTypesAreRefused() throws IOException {
    JsonObject j = p05();
    JsonObject per = new JsonObject();
    per.add("sliding_attention", yarn());
    j.add("rope_parameters", per);
    assertTrue(
        assertThrows(CheckpointException.class, () -> OlmoConfig.fromJson(j, "cfg"))
            .getMessage()
            .contains("sliding-window layers"));
    JsonObject k = p05();
    k.getAsJsonObject("rope_scaling").addProperty("rope_type", "longrope");
    assertTrue(
        assertThrows(CheckpointException.class, () -> OlmoConfig.fromJson(k, "cfg"))
            .getMessage()
            .contains("longrope"));
    JsonObject l = p05();
    l.getAsJsonArray("layer_types").set(0, new com.google.gson.JsonPrimitive("linear_attention"));
    assertTrue(
        assertThrows(CheckpointException.class, () -> OlmoConfig.fromJson(l, "cfg"))
            .getMessage()
            .contains("linear_attention"));
  }

  @Test
  void defaultLayerTypesAndExplicitHeadDim() throws IOException {
    JsonObject j = p05();
    j.remove("layer_types");
    j.addProperty("num_hidden_layers", 8);
    j.addProperty("head_dim", 12); // 2 heads x 12 = 24 != hidden 16
    OlmoConfig c = OlmoConfig.fromJson(j, "cfg");
    assertEquals(List.of(S, S, S, F, S, S, S, F), c.attention().kinds());
    assertEquals(12, c.headDim());
    assertEquals(24, c.qDim());
    assertEquals(12, c.kvDim());
    BlockTensors.Block b = c.layout().block(c, 0);
    assertArrayEquals(new long[] {24, 16}, b.qkv().get(0).shape());
    assertArrayEquals(new long[] {16, 24}, b.out().get(0).shape());
    assertArrayEquals(new long[] {24}, b.qNormWeight().get(0).shape());
  }

  @Test
  void olmoHybridIsRefusedByNameBeforeAnyWork() {
    JsonObject j = new JsonObject();
    j.addProperty("model_type", "olmo_hybrid");
    j.addProperty("hidden_size", 3840);
    String m =
        assertThrows(CheckpointException.class, () -> OlmoConfig.fromJson(j, "config.json"))
            .getMessage();
    assertTrue(m.contains("olmo_hybrid") && m.contains("Gated DeltaNet"), m);
    assertTrue(m.contains("\"olmo3\"") && m.contains("\"olmo2\""), m);
  }
}
