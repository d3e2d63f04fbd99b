package io.olmoppl.spark;

import io.olmoppl.scoring.ScoringOptions;
import java.io.Serializable;

/**
 * What a task needs to find (or build) its executor's model: small, serialisable, captured in task closures. Never
 * holds weights.
 *
 * @param modelPath checkpoint directory as the executors see it
 * @param fingerprint the driver's fingerprint of that checkpoint; executors verify it before scoring
 * @param options scoring options
 */
public record ModelSpec(String modelPath, String fingerprint, ScoringOptions options) implements Serializable {
  private static final long serialVersionUID = 1L;

  /** @return the executor cache key: one model per checkpoint, tying rule, precision and device */
  public String cacheKey() {
    return fingerprint + "/" + options.tying().id() + "/" + options.precision().id() + "/" + options.device();
  }
}
