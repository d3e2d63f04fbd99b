package io.olmoppl.checkpoint.writer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.olmoppl.checkpoint.Checkpoint;
import io.olmoppl.checkpoint.CheckpointLayout;
import io.olmoppl.checkpoint.DType;
import io.olmoppl.checkpoint.OlmoConfig;
import io.olmoppl.checkpoint.TyingRule;
import io.olmoppl.checkpoint.writer.CheckpointMaker.OutputCopy;
import io.olmoppl.checkpoint.writer.SafetensorsWriter.Tensor;
import io.olmoppl.testing.Refcases;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The random-checkpoint writer against the strict loader: in every layout, what it writes is
 * recognised as that layout with the dimensions asked for and opens without a complaint; the same
 * seed writes the same bytes.
 */
class CheckpointMakerTest {
  @TempDir Path tmp;

  private static CheckpointMaker maker(CheckpointLayout layout) {
    return CheckpointMaker.small(layout)
        .withDims(16, 2, 4, 2, 24, 32)
        .withVocabRows(
            layout == CheckpointLayout.OLMO2
                ? CheckpointMaker.DOLMA2_ROWS
                : CheckpointMaker.NEOX_ROWS);
  }

  private static Path tokenizer(CheckpointLayout layout) {
    return layout == CheckpointLayout.OLMO2 ? Refcases.dolma2Tokenizer() : Refcases.neoxTokenizer();
  }

  @ParameterizedTest
  @EnumSource(CheckpointLayout.class)
  void theConfigIsReadBackAsTheLayoutWithTheDimensionsAskedFor(CheckpointLayout layout) {
    CheckpointMaker m = maker(layout).withTied(false, OutputCopy.NONE);
    OlmoConfig c = OlmoConfig.fromJson(m.config(), layout.id());
    assertEquals(layout, c.layout());
    assertEquals(16, c.hiddenSize());
    assertEquals(2, c.numHiddenLayers());
    assertEquals(4, c.numAttentionHeads());
    assertEquals(2, c.numKeyValueHeads());
    assertEquals(24, c.intermediateSize());
    assertEquals(m.vocabRows(), c.vocabRows());
    assertEquals(32, c.maxPositionEmbeddings());
    assertFalse(c.tied());
    assertTrue(
        OlmoConfig.fromJson(maker(layout).withTied(true, OutputCopy.NONE).config(), "x").tied());
  }

  @ParameterizedTest
  @EnumSource(CheckpointLayout.class)
  void whatItWritesOpensStrictly(CheckpointLayout layout) throws IOException {
    for (boolean tied : new boolean[] {true, false}) {
      Path dir = tmp.resolve(layout.id() + "-" + tied);
      maker(layout)
          .withTied(tied, OutputCopy.NONE)
          .withDtype(DType.BF16)
          .write(dir, tokenizer(layout));
      Checkpoint c = Checkpoint.open(dir, TyingRule.STRICT);
      assertEquals(layout, c.config().layout());
      assertEquals(tied, c.tying().tied());
      assertEquals(DType.BF16, c.tensors().get(layout.embedding()).info().dtype(), "stored dtype");
    }
  }

  @Test
  void theSameSeedWritesTheSameBytesAndAnotherSeedOthers() throws IOException {
    CheckpointMaker m = maker(CheckpointLayout.HF_OLMO);
    m.write(tmp.resolve("a"), Refcases.neoxTokenizer());
    m.write(tmp.resolve("b"), Refcases.neoxTokenizer());
    m.withSeed(m.seed() + 1).write(tmp.resolve("c"), Refcases.neoxTokenizer());
    byte[] a = Files.readAllBytes(tmp.resolve("a/model.safetensors"));
    assertArrayEquals(a, Files.readAllBytes(tmp.resolve("b/model.safetensors")));
    assertNotEquals(
        java.util.Arrays.hashCode(a),
        java.util.Arrays.hashCode(Files.readAllBytes(tmp.resolve("c/model.safetensors"))));
  }

  @Test
  void otherValuesInTheLayoutsTensorsAreWrittenUnderItsConfig() throws IOException {
    CheckpointMaker m = maker(CheckpointLayout.HF_OLMO);
    List<Tensor> zeros = new ArrayList<>();
    for (Tensor t : m.tensors()) {
      zeros.add(new Tensor(t.name(), t.dtype(), t.shape(), new float[t.values().length]));
    }
    Path dir = tmp.resolve("zeros");
    m.write(dir, Refcases.neoxTokenizer(), zeros);
    Checkpoint c = Checkpoint.open(dir, TyingRule.STRICT);
    assertEquals(m.tensors().size(), c.tensors().size());
    assertEquals(
        Files.readString(tmp.resolve("zeros/config.json")),
        Files.readString(writeDefault(m).resolve("config.json")));
  }

  private Path writeDefault(CheckpointMaker m) throws IOException {
    Path dir = tmp.resolve("default");
    m.write(dir, Refcases.neoxTokenizer());
    return dir;
  }
}
