package io.olmoppl.checkpoint;

/**
 * A checkpoint that cannot be scored: missing or malformed files, tensors that do not match the
 * config, or a tying conflict. The message names what is wrong, why, and how to fix it; the job
 * prints it and exits non-zero.
 */
public class CheckpointException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public CheckpointException(String message) {
    super(message);
  }

  public CheckpointException(String message, Throwable cause) {
    super(message, cause);
  }
}
