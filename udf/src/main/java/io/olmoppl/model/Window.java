package io.olmoppl.model;

/**
 * One forward row of a document: input tokens plus the token after the last one, and the first
 * position whose next token counts.
 */
public record Window(long[] tokens, int firstScored) {
  public Window {
    if (tokens.length < 2 || firstScored < 0 || firstScored > tokens.length - 2) {
      throw new IllegalArgumentException("a window needs at least one scored target");
    }
  }

  /**
   * @return input length (tokens fed to the model)
   */
  public int inputLength() {
    return tokens.length - 1;
  }

  /**
   * @return number of scored targets
   */
  public int scored() {
    return tokens.length - 1 - firstScored;
  }
}
