package io.olmoppl.checkpoint;

import io.olmoppl.checkpoint.SafetensorsFile.TensorInfo;
import java.io.IOException;
import java.io.Serializable;
import java.nio.file.Files;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Everything about a validated checkpoint except the weight bytes: what the driver sends to
 * executors (broadcast once), so that they can build the model from broadcast weights or verify the
 * files they read.
 *
 * @param config the normalised config
 * @param tying the tying decision made on the driver under the user's rule
 * @param fingerprint the checkpoint fingerprint
 * @param tokenizerJson the bytes of tokenizer.json
 * @param tensors header entries of the distinct tensors the model loads, in load order (the tied
 *     matrix once)
 */
public record Manifest(
    OlmoConfig config,
    Tying tying,
    String fingerprint,
    byte[] tokenizerJson,
    Map<String, TensorInfo> tensors)
    implements Serializable {
  private static final long serialVersionUID = 1L;

  /**
   * @return the manifest of {@code c}
   */
  public static Manifest of(Checkpoint c) {
    Map<String, TensorInfo> t = new LinkedHashMap<>();
    for (String n : c.loadedTensors()) {
      t.put(n, c.tensors().get(n).info());
    }
    try {
      return new Manifest(
          c.config(), c.tying(), c.fingerprint(), Files.readAllBytes(c.tokenizerJson()), t);
    } catch (IOException e) {
      throw new CheckpointException("cannot read " + c.tokenizerJson() + ": " + e.getMessage(), e);
    }
  }

  /**
   * @return stored bytes of the distinct tensors
   */
  public long uniqueWeightBytes() {
    return tensors.values().stream().mapToLong(TensorInfo::byteLength).sum();
  }

  /**
   * @return the names of the loaded tensors
   */
  public List<String> tensorNames() {
    return List.copyOf(tensors.keySet());
  }
}
