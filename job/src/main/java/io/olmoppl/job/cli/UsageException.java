package io.olmoppl.job.cli;

/** Thrown for bad command lines: printed with the usage hint, exit code 2. */
public final class UsageException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public UsageException(String message) {
    super(message);
  }
}
