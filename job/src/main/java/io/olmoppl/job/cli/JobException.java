package io.olmoppl.job.cli;

/**
 * A failure of the run itself (bad input, output or cut-offs file), with a message that says what,
 * why and how to fix it. {@code io.olmoppl.job.Main} prints the message alone, exit code 1.
 */
public final class JobException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public JobException(String message) {
    super(message);
  }
}
