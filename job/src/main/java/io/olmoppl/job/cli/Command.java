package io.olmoppl.job.cli;

import java.io.PrintStream;

/**
 * One command of the {@code olmo-ppl} command line, dispatched by {@code io.olmoppl.job.Main} by
 * its name.
 */
public interface Command {
  /** The name on the command line ({@code score}, {@code inspect}, ...). */
  String name();

  /** The line of the command list: the main options, two spaces, what the command does. */
  String oneLine();

  /** The full help of {@code olmo-ppl <name> --help}. */
  String help();

  /**
   * Runs the command; {@code argv[0]} is its name. Errors are thrown ({@link
   * io.olmoppl.job.cli.UsageException} for a bad command line, anything else for a failed run), not
   * printed.
   *
   * @return the exit code (0: done)
   */
  int run(String[] argv, PrintStream out, PrintStream err) throws Exception;
}
