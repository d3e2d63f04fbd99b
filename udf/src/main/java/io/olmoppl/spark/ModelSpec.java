package io.olmoppl.spark;

import io.olmoppl.checkpoint.Manifest;
import io.olmoppl.scoring.ScoringOptions;
import java.io.Serializable;
import org.apache.spark.broadcast.Broadcast;

/**
 * What a task needs to find (or build) its executor's model: captured in task closures, so it holds
 * only handles, never weights.
 *
 * @param modelPath checkpoint directory as the executors see it (files mode; any Hadoop URI)
 * @param fingerprint the driver's fingerprint of that checkpoint (config, tokenizer, headers and
 *     the weights' content); executors verify it before scoring
 * @param manifest config, tying decision, tokenizer and tensor index, broadcast once
 * @param weights the broadcast weights, or null when executors read the files themselves
 * @param options scoring options
 * @param stamp the {@code ppl_model} value written to every row: the fingerprint and what else
 *     changes the numbers
 */
public record ModelSpec(
    String modelPath,
    String fingerprint,
    Broadcast<Manifest> manifest,
    WeightsBroadcast weights,
    ScoringOptions options,
    String stamp)
    implements Serializable {
  private static final long serialVersionUID = 1L;

  /**
   * @return {@code broadcast} or {@code files}
   */
  public String distribution() {
    return weights != null ? "broadcast" : "files";
  }

  /**
   * @return the executor cache key: one model per checkpoint, tying rule and precision (the device
   *     is added)
   */
  public String cacheKey() {
    return fingerprint + "/" + options.tying().id() + "/" + options.precision().id();
  }
}
