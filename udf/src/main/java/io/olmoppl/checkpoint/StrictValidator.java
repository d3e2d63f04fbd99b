package io.olmoppl.checkpoint;

import io.olmoppl.checkpoint.BlockTensors.Stored;
import io.olmoppl.checkpoint.Checkpoint.Located;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * The strict loader's check, as nanoGPT's {@code from_pretrained} asserts it: the stored tensors
 * are exactly those the config's layout requires (plus the output matrix and its bias as the tying
 * decides, and tensors the layout may ignore), each with the shape the config implies. A missing,
 * unexpected or misshaped tensor is an error naming it, the expected shape and the file.
 */
final class StrictValidator {
  private StrictValidator() {}

  static void validate(
      Path dir,
      OlmoConfig c,
      Map<String, Located> tensors,
      Map<String, long[]> expected,
      Tying tying) {
    List<String> missing = new ArrayList<>();
    for (Map.Entry<String, long[]> e : expected.entrySet()) {
      Located t = tensors.get(e.getKey());
      if (t == null) {
        missing.add(e.getKey() + " " + Arrays.toString(e.getValue()));
      } else {
        checkShape(e.getKey(), t, e.getValue());
      }
    }
    String out = c.layout().output();
    Stored outBias = c.layout().loadedOutputBias(c, tying.tied());
    if (!tying.tied()) {
      checkShape(out, tensors.get(out), new long[] {c.vocabRows(), c.hiddenSize()});
      if (outBias != null && !tensors.containsKey(outBias.name())) {
        missing.add(outBias.toString());
      }
    }
    if (!missing.isEmpty()) {
      throw CheckpointErrors.missingTensors(dir, c.layout().id(), missing);
    }
    List<String> unexpected = new ArrayList<>();
    for (Map.Entry<String, Located> e : tensors.entrySet()) {
      String n = e.getKey();
      if (expected.containsKey(n)
          || n.equals(out)
          || (outBias != null && n.equals(outBias.name()))
          || c.layout().ignorable(n)) {
        continue;
      }
      unexpected.add(
          n
              + " "
              + e.getValue().info().shapeString()
              + " in "
              + e.getValue().file().path().getFileName());
    }
    if (!unexpected.isEmpty()) {
      throw CheckpointErrors.unexpectedTensors(dir, c.layout().id(), unexpected);
    }
  }

  /**
   * @throws CheckpointException when tensor {@code name} is not of {@code shape}
   */
  static void checkShape(String name, Located t, long[] shape) {
    if (!Arrays.equals(t.info().shape(), shape)) {
      throw CheckpointErrors.wrongShape(name, t.file().path(), t.info().shapeString(), shape);
    }
  }
}
