package io.olmoppl.checkpoint;

import java.util.Locale;

/**
 * What to do when the config says tied but the checkpoint also stores an output matrix that differs
 * from the embedding (a byte-identical copy is always recognised as an alias of the one tied
 * tensor).
 */
public enum TyingRule {
  /** Refuse the checkpoint, naming both tensors and their max abs difference (default). */
  STRICT,
  /**
   * Follow the config (OLMo's own rule): logits from the embedding; the stored matrix is ignored
   * with a warning.
   */
  CONFIG,
  /** Follow the file: use the stored matrix as an untied output projection. */
  CHECKPOINT;

  /** Parses {@code strict|config|checkpoint}. */
  public static TyingRule parse(String s) {
    try {
      return valueOf(s.trim().toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(
          "tying must be strict, config or checkpoint, not '" + s + "'");
    }
  }

  public String id() {
    return name().toLowerCase(Locale.ROOT);
  }
}
