package io.olmoppl.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.olmoppl.checkpoint.writer.CheckpointMaker;
import io.olmoppl.checkpoint.writer.SafetensorsWriter.Tensor;
import io.olmoppl.testing.Refcases;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The olmoe and flex_olmo layouts: their configs (the classes' defaults, the expert facts) and
 * strict loading of the router and of every expert's tensors.
 */
class ExpertLayoutTest {
  @TempDir Path tmp;

  private static CheckpointMaker maker(CheckpointLayout layout) {
    return CheckpointMaker.small(layout)
        .withDims(16, 2, 4, 2, 24, 32)
        .withExperts(new Experts(5, 2, false))
        .withSeed(3);
  }

  private static Path tokenizer(CheckpointLayout layout) {
    return layout == CheckpointLayout.FLEX_OLMO
        ? Refcases.dolma2Tokenizer()
        : Refcases.neoxTokenizer();
  }

  private Path write(CheckpointLayout layout, List<Tensor> tensors) throws IOException {
    Path dir = Files.createTempDirectory(tmp, layout.id());
    maker(layout).write(dir, tokenizer(layout), tensors);
    return dir;
  }

  private static String refused(Path dir) {
    return assertThrows(CheckpointException.class, () -> Checkpoint.open(dir, TyingRule.STRICT))
        .getMessage();
  }

  private static OlmoConfig config(Consumer<JsonObject> edit, String file) {
    JsonObject j = JsonParser.parseString(readResource(file)).getAsJsonObject();
    edit.accept(j);
    return OlmoConfig.fromJson(j, file);
  }

  private static String readResource(String caseName) {
    try {
      return Files.readString(Refcases.dir(caseName).resolve("config.json"));
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  @Test
  void theReleasedConfigsAreReadWithTheirClassesDefaults() {
    OlmoConfig olmoe = config(j -> j.remove("rms_norm_eps"), "p06_olmoe_f16");
    assertEquals(CheckpointLayout.OLMOE, olmoe.layout());
    assertEquals(new Experts(6, 2, false), olmoe.experts());
    assertEquals(1e-5, olmoe.normEps(), "OLMoE-1B-7B-0924 has no rms_norm_eps: the class's 1e-5");
    assertFalse(olmoe.normAfter(), "OLMoE norms come before the sublayers");
    assertTrue(olmoe.qkNorm());
    assertEquals(24, olmoe.intermediateSize(), "the width of one expert");

    OlmoConfig flex = config(j -> j.remove("rms_norm_eps"), "p07_flex_olmo_bf16");
    assertEquals(CheckpointLayout.FLEX_OLMO, flex.layout());
    assertEquals(new Experts(3, 2, true), flex.experts());
    assertEquals(1e-6, flex.normEps());
    assertTrue(flex.normAfter());
    assertNull(flex.clipQkv());

    OlmoConfig defaults =
        config(
            j -> {
              j.remove("num_experts");
              j.remove("num_experts_per_tok");
              j.remove("norm_topk_prob");
            },
            "p06_olmoe_f16");
    assertEquals(new Experts(64, 8, false), defaults.experts(), "OlmoeConfig's defaults");
    OlmoConfig clipped = config(j -> j.addProperty("clip_qkv", 8.0), "p06_olmoe_f16");
    assertEquals(8.0, clipped.clipQkv());
  }

  @Test
  void impossibleExpertCountsAndUnsupportedKeysAreRefusedByName() {
    String more =
        assertThrows(
                CheckpointException.class,
                () -> config(j -> j.addProperty("num_experts_per_tok", 7), "p06_olmoe_f16"))
            .getMessage();
    assertTrue(more.contains("num_experts_per_tok 7") && more.contains("num_experts 6"), more);
    String scaling =
        assertThrows(
                CheckpointException.class,
                () ->
                    config(
                        j -> j.add("rope_scaling", JsonParser.parseString("{\"type\":\"linear\"}")),
                        "p07_flex_olmo_bf16"))
            .getMessage();
    assertTrue(scaling.contains("rope_scaling"), scaling);
    String act =
        assertThrows(
                CheckpointException.class,
                () -> config(j -> j.addProperty("hidden_act", "gelu"), "p06_olmoe_f16"))
            .getMessage();
    assertTrue(act.contains("hidden_act gelu"), act);
  }

  @ParameterizedTest
  @EnumSource(
      value = CheckpointLayout.class,
      names = {"OLMOE", "FLEX_OLMO"})
  void everyExpertTensorIsRequiredAndShapeChecked(CheckpointLayout layout) throws IOException {
    List<Tensor> all = maker(layout).tensors();
    assertTrue(all.stream().anyMatch(t -> t.name().equals("model.layers.1.mlp.gate.weight")));
    assertFalse(all.stream().anyMatch(t -> t.name().equals("model.layers.0.mlp.up_proj.weight")));
    // what the maker writes opens, and names every tensor of the layout
    Checkpoint ok = Checkpoint.open(write(layout, all), TyingRule.STRICT);
    assertEquals(5, ok.config().experts().count());
    assertTrue(
        ok.loadedTensors().contains("model.layers.1.mlp.experts.4.down_proj.weight"),
        "the last expert's down projection is loaded");
    String norm =
        layout == CheckpointLayout.OLMOE ? "input_layernorm" : "post_feedforward_layernorm";
    assertTrue(ok.loadedTensors().contains("model.layers.0." + norm + ".weight"), norm);

    String gone = "model.layers.1.mlp.experts.3.up_proj.weight";
    List<Tensor> missing = new ArrayList<>(all);
    missing.removeIf(t -> t.name().equals(gone));
    assertTrue(refused(write(layout, missing)).contains(gone));

    List<Tensor> extra = new ArrayList<>(all);
    Tensor down =
        all.stream()
            .filter(t -> t.name().endsWith("experts.0.down_proj.weight"))
            .findFirst()
            .orElseThrow();
    String sixth = "model.layers.0.mlp.experts.5.down_proj.weight";
    extra.add(new Tensor(sixth, down.dtype(), down.shape(), down.values()));
    assertTrue(refused(write(layout, extra)).contains(sixth), "an expert the config does not have");

    List<Tensor> reshaped = new ArrayList<>();
    for (Tensor t : all) {
      reshaped.add(
          t.name().equals("model.layers.0.mlp.gate.weight")
              ? new Tensor(t.name(), t.dtype(), new long[] {16, 5}, t.values())
              : t);
    }
    String shape = refused(write(layout, reshaped));
    assertTrue(shape.contains("model.layers.0.mlp.gate.weight"), shape);
  }
}
