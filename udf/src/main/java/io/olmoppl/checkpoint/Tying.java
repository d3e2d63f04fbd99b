package io.olmoppl.checkpoint;

import java.io.Serializable;
import java.util.List;

/**
 * The tying decision for one checkpoint.
 *
 * @param tied whether one matrix serves as embedding and output projection
 * @param tiedGroup every name under which the file stores the one tied matrix (empty when untied),
 *     e.g. {@code [model.transformer.wte.weight, model.transformer.ff_out.weight]}
 * @param embeddingTensor the tensor used as input embedding
 * @param outputTensor the tensor used as output projection (the embedding itself when tied)
 * @param ignoredTensor a stored output matrix that the tying rule {@code config} ignores, or null
 * @param warnings what the user should know about the decision
 */
public record Tying(
    boolean tied,
    List<String> tiedGroup,
    String embeddingTensor,
    String outputTensor,
    String ignoredTensor,
    List<String> warnings)
    implements Serializable {

  /**
   * @return the roles the one tied matrix serves
   */
  public List<String> roles() {
    return tied ? List.of("input_embedding", "output_projection") : List.of();
  }
}
