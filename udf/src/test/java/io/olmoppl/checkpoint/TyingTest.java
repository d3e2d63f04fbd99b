package io.olmoppl.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.BaseNDManager;
import ai.djl.ndarray.NDManager;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.olmoppl.checkpoint.writer.CheckpointMaker;
import io.olmoppl.checkpoint.writer.CheckpointMaker.OutputCopy;
import io.olmoppl.checkpoint.writer.SafetensorsWriter.Tensor;
import io.olmoppl.model.OlmoModel;
import io.olmoppl.model.Precision;
import io.olmoppl.model.Window;
import io.olmoppl.runtime.DjlSettings;
import io.olmoppl.testing.Refcases;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The project's tying rule (weight tying is at the tensor level; OLMo's models compute tied logits
 * from the embedding): a tied checkpoint that also stores the output matrix is one tensor when the
 * copy is byte-identical; a differing copy is refused by default, or resolved by the tying rule
 * {@code config} (logits from the embedding) or {@code checkpoint} (the stored matrix, untied).
 */
class TyingTest {
  private static final int VOCAB = CheckpointMaker.NEOX_ROWS;
  private static final int HIDDEN = 16;

  /** CheckpointMaker's DIFFERENT copy adds 0.5 to element (V*C)/2, i.e. row V/2, column 0. */
  private static final long CHANGED_ROW = VOCAB / 2;

  /**
   * Targets include the changed row several times, so its log-prob visibly moves when that row is
   * used.
   */
  private static final long[] TOKENS = {
    50279, CHANGED_ROW, 17, 900, CHANGED_ROW, 3001, 45000, CHANGED_ROW, 12, 5, CHANGED_ROW
  };

  @TempDir Path tmp;

  @BeforeAll
  static void configure() {
    DjlSettings.configure();
  }

  private static CheckpointMaker tiedMaker(CheckpointLayout layout, OutputCopy copy) {
    return CheckpointMaker.small(layout)
        .withDims(HIDDEN, 1, 4, 2, 24, 32)
        .withVocabRows(VOCAB)
        .withSeed(77)
        .withTied(true, copy);
  }

  private Path write(String name, CheckpointMaker maker) throws IOException {
    Path dir = tmp.resolve(name);
    maker.write(dir, Refcases.neoxTokenizer());
    return dir;
  }

  private static float[] score(Checkpoint c) {
    try (OlmoModel m = OlmoModel.load(c, c, Device.cpu(), Precision.FP32);
        NDManager bm = m.newBatchManager()) {
      return m.logProbs(bm, List.of(new Window(TOKENS, 0)))[0];
    }
  }

  private static long storedBytes(Checkpoint c) {
    return c.tensors().values().stream().mapToLong(l -> l.info().byteLength()).sum();
  }

  private static String tyingKey(CheckpointLayout layout) {
    return layout == CheckpointLayout.HF_OLMO ? "weight_tying" : "tie_word_embeddings";
  }

  // ---------------------------------------------------------------------------------------------------------------
  // (a) p02: hf_olmo with a bit-identical ff_out alias

  @Test
  void p02StoredAliasIsOneTiedTensor() {
    Path dir = Refcases.dir("p02_hfolmo_tied_ffout_alias_bf16");
    Checkpoint c = Checkpoint.open(dir, TyingRule.STRICT);
    Tying t = c.tying();
    String wte = "model.transformer.wte.weight";
    String ffOut = "model.transformer.ff_out.weight";
    assertTrue(t.tied());
    assertEquals(List.of(wte, ffOut), t.tiedGroup());
    assertEquals(wte, t.embeddingTensor());
    assertEquals(wte, t.outputTensor());
    assertNull(t.ignoredTensor());
    assertTrue(t.warnings().isEmpty(), t.warnings().toString());
    assertEquals(List.of("input_embedding", "output_projection"), t.roles());

    // the reference case's own description of the tie
    JsonObject tying = Refcases.json("p02_hfolmo_tied_ffout_alias_bf16").getAsJsonObject("tying");
    List<String> expectedGroup = new ArrayList<>();
    for (JsonElement e : tying.getAsJsonArray("tied_group")) {
      expectedGroup.add(e.getAsString());
    }
    assertEquals(expectedGroup, t.tiedGroup());

    // the matrix counted once: every stored byte except the alias
    long aliasBytes = c.tensors().get(ffOut).info().byteLength();
    assertEquals(50304L * 48 * 2, aliasBytes, "BF16 [50304, 48]");
    assertEquals(storedBytes(c) - aliasBytes, c.uniqueWeightBytes());
    assertFalse(c.loadedTensors().contains(ffOut));
    assertEquals(c.uniqueWeightBytes() / 2, c.parameterCount(), "BF16: 2 bytes per parameter");

    try (OlmoModel m = OlmoModel.load(c, c, Device.cpu(), Precision.FP32)) {
      assertTrue(m.tied());
      assertSame(m.embedding(), m.output(), "one native tensor serves both roles");
      assertEquals(1, m.distinctWeights().size());
      // the alias is not loaded a second time: one [50304, 48] array in the weights' manager
      long matrices =
          ((BaseNDManager) m.weightsManager())
              .getManagedArrays().stream()
                  .filter(a -> a.getShape().equals(new ai.djl.ndarray.types.Shape(50304, 48)))
                  .count();
      assertEquals(1, matrices);
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // (b) tied config with a differing stored copy

  /**
   * The max abs difference between the maker's embedding and its DIFFERENT copy, as the loader
   * computes it.
   */
  private static double writtenDifference(CheckpointMaker maker) {
    List<Tensor> t = maker.tensors();
    float[] emb = t.get(0).values();
    float[] copy = t.get(t.size() - 1).values();
    assertEquals(maker.layout().output(), t.get(t.size() - 1).name());
    double max = 0;
    for (int i = 0; i < emb.length; i++) {
      max = Math.max(max, Math.abs((double) emb[i] - copy[i]));
    }
    return max;
  }

  @ParameterizedTest
  @EnumSource(
      value = CheckpointLayout.class,
      names = {"HF_OLMO", "OLMO"})
  void differingCopyIsRefusedByDefault(CheckpointLayout layout) throws IOException {
    CheckpointMaker maker = tiedMaker(layout, OutputCopy.DIFFERENT);
    Path dir = write("strict-" + layout.id(), maker);
    CheckpointException e =
        assertThrows(CheckpointException.class, () -> Checkpoint.open(dir, TyingRule.STRICT));
    String msg = e.getMessage();
    String emb = layout.embedding();
    String out = layout.output();
    for (String part :
        List.of(
            emb,
            out,
            "max abs difference",
            tyingKey(layout),
            "--tying config",
            "--tying checkpoint")) {
      assertTrue(msg.contains(part), "message should mention '" + part + "': " + msg);
    }
    double diff = writtenDifference(maker);
    assertEquals(0.5, diff, 1e-6, "CheckpointMaker moves one element by 0.5");
    assertTrue(
        msg.contains("max abs difference " + diff),
        "message should give the difference " + diff + ": " + msg);
  }

  @ParameterizedTest
  @EnumSource(
      value = CheckpointLayout.class,
      names = {"HF_OLMO", "OLMO"})
  void tyingConfigUsesEmbeddingAndTyingCheckpointUsesStoredMatrix(CheckpointLayout layout)
      throws IOException {
    String emb = layout.embedding();
    String out = layout.output();
    Path different = write("diff-" + layout.id(), tiedMaker(layout, OutputCopy.DIFFERENT));
    Path plain = write("plain-" + layout.id(), tiedMaker(layout, OutputCopy.NONE));
    Checkpoint none = Checkpoint.open(plain, TyingRule.STRICT);
    assertTrue(none.tying().tied());
    assertEquals(List.of(emb), none.tying().tiedGroup());

    // CONFIG: OLMo's rule, logits from the embedding; the stored copy is ignored with a warning
    Checkpoint cfg = Checkpoint.open(different, TyingRule.CONFIG);
    Tying tc = cfg.tying();
    assertTrue(tc.tied());
    assertEquals(List.of(emb), tc.tiedGroup());
    assertEquals(emb, tc.outputTensor());
    assertEquals(out, tc.ignoredTensor());
    assertEquals(1, tc.warnings().size());
    assertTrue(
        tc.warnings().get(0).contains("tying config") && tc.warnings().get(0).contains(out),
        tc.warnings().get(0));
    assertEquals(none.uniqueWeightBytes(), cfg.uniqueWeightBytes());
    try (OlmoModel m = OlmoModel.load(cfg, cfg, Device.cpu(), Precision.FP32)) {
      assertTrue(m.tied());
      assertSame(m.embedding(), m.output());
    }
    float[] viaConfig = score(cfg);
    float[] viaPlain = score(none);
    assertEquals(TOKENS.length - 1, viaConfig.length);
    for (int i = 0; i < viaConfig.length; i++) {
      assertEquals(
          viaPlain[i],
          viaConfig[i],
          1e-6,
          "CONFIG scores as the checkpoint without the copy, target " + i);
    }

    // CHECKPOINT: the stored matrix as an untied output projection
    Checkpoint ck = Checkpoint.open(different, TyingRule.CHECKPOINT);
    Tying tk = ck.tying();
    assertFalse(tk.tied());
    assertTrue(tk.tiedGroup().isEmpty());
    assertEquals(emb, tk.embeddingTensor());
    assertEquals(out, tk.outputTensor());
    assertEquals(1, tk.warnings().size());
    assertTrue(tk.warnings().get(0).contains("tying checkpoint"), tk.warnings().get(0));
    assertEquals(
        cfg.uniqueWeightBytes() + (long) VOCAB * HIDDEN * 4,
        ck.uniqueWeightBytes(),
        "two matrices");
    try (OlmoModel m = OlmoModel.load(ck, ck, Device.cpu(), Precision.FP32)) {
      assertFalse(m.tied());
      assertNotSame(m.embedding(), m.output());
      assertEquals(2, m.distinctWeights().size());
    }
    float[] viaCheckpoint = score(ck);
    double onChangedRow = 0;
    double elsewhere = 0;
    for (int i = 0; i < viaCheckpoint.length; i++) {
      double d = Math.abs(viaCheckpoint[i] - viaConfig[i]);
      if (TOKENS[i + 1] == CHANGED_ROW) {
        onChangedRow = Math.max(onChangedRow, d);
      } else {
        elsewhere = Math.max(elsewhere, d);
      }
    }
    assertTrue(
        onChangedRow > 1e-3, "targets on the changed row must score differently: " + onChangedRow);
    assertTrue(elsewhere < onChangedRow, "other targets move only through the normaliser");
  }

  // ---------------------------------------------------------------------------------------------------------------
  // (c) untied config, no output matrix

  @ParameterizedTest
  @EnumSource(
      value = CheckpointLayout.class,
      names = {"HF_OLMO", "OLMO", "OLMO2"})
  void untiedConfigWithoutOutputMatrixIsRefused(CheckpointLayout layout) throws IOException {
    CheckpointMaker maker =
        CheckpointMaker.small(layout)
            .withDims(HIDDEN, 1, 4, 2, 24, 32)
            .withVocabRows(layout == CheckpointLayout.OLMO2 ? CheckpointMaker.DOLMA2_ROWS : VOCAB)
            .withTied(true, OutputCopy.NONE);
    Path dir = tmp.resolve("untied-" + layout.id());
    maker.write(
        dir,
        layout == CheckpointLayout.OLMO2 ? Refcases.dolma2Tokenizer() : Refcases.neoxTokenizer());
    Path cfgPath = dir.resolve("config.json");
    JsonObject j = JsonParser.parseString(Files.readString(cfgPath)).getAsJsonObject();
    j.addProperty(tyingKey(layout), false);
    Files.writeString(cfgPath, j.toString());
    CheckpointException e =
        assertThrows(CheckpointException.class, () -> Checkpoint.open(dir, TyingRule.STRICT));
    String out = layout.output();
    for (String part :
        List.of(
            out,
            tyingKey(layout),
            "untied",
            "["
                + (layout == CheckpointLayout.OLMO2 ? CheckpointMaker.DOLMA2_ROWS : VOCAB)
                + ", "
                + HIDDEN
                + "]")) {
      assertTrue(
          e.getMessage().contains(part),
          "message should mention '" + part + "': " + e.getMessage());
    }
    if (layout == CheckpointLayout.OLMO) {
      assertTrue(e.getMessage().contains("lm_head.weight"));
    }
  }

  @Test
  void untiedByDefaultWhenTransformersKeyIsAbsent() throws IOException {
    // transformers' tie_word_embeddings defaults to false: without the key, the missing lm_head is
    // an error too
    Path dir = write("nokey", tiedMaker(CheckpointLayout.OLMO, OutputCopy.NONE));
    Path cfgPath = dir.resolve("config.json");
    JsonObject j = JsonParser.parseString(Files.readString(cfgPath)).getAsJsonObject();
    j.remove("tie_word_embeddings");
    Files.writeString(cfgPath, j.toString());
    CheckpointException e =
        assertThrows(CheckpointException.class, () -> Checkpoint.open(dir, TyingRule.STRICT));
    assertTrue(
        e.getMessage().contains("lm_head.weight") && e.getMessage().contains("absent"),
        e.getMessage());
  }

  // ---------------------------------------------------------------------------------------------------------------
  // (d) identical F16 copy under the olmo layout

  @Test
  void identicalF16CopyIsOneTiedTensor() throws IOException {
    CheckpointMaker maker =
        tiedMaker(CheckpointLayout.OLMO, OutputCopy.IDENTICAL).withDtype(DType.F16);
    Path dir = write("identical-f16", maker);
    Checkpoint c = Checkpoint.open(dir, TyingRule.STRICT);
    assertEquals(DType.F16, c.tensors().get("lm_head.weight").info().dtype());
    Tying t = c.tying();
    assertTrue(t.tied());
    assertEquals(List.of("model.embed_tokens.weight", "lm_head.weight"), t.tiedGroup());
    assertTrue(t.warnings().isEmpty());
    assertEquals(storedBytes(c) - (long) VOCAB * HIDDEN * 2, c.uniqueWeightBytes());
    try (OlmoModel m = OlmoModel.load(c, c, Device.cpu(), Precision.FP32)) {
      assertSame(m.embedding(), m.output());
    }
    // the same under every rule: an identical copy is never a conflict
    for (TyingRule rule : TyingRule.values()) {
      assertEquals(t.tiedGroup(), Checkpoint.open(dir, rule).tying().tiedGroup(), rule.id());
    }
    // and it scores like the F16 checkpoint without the copy
    Checkpoint plain =
        Checkpoint.open(
            write(
                "plain-f16",
                tiedMaker(CheckpointLayout.OLMO, OutputCopy.NONE).withDtype(DType.F16)),
            TyingRule.STRICT);
    float[] a = score(c);
    float[] b = score(plain);
    for (int i = 0; i < a.length; i++) {
      assertEquals(b[i], a[i], 1e-6, "target " + i);
    }
  }
}
