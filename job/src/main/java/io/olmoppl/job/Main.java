package io.olmoppl.job;

import io.olmoppl.checkpoint.CheckpointException;
import io.olmoppl.job.Args.UsageException;
import io.olmoppl.job.tools.Bench;
import io.olmoppl.job.tools.MakeCheckpointCommand;
import io.olmoppl.runtime.DjlSettings;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;

/**
 * The {@code olmo-ppl} command line: {@code score}, {@code inspect}, {@code make-checkpoint},
 * {@code demo}, {@code bench}. Also the main class of the spark-submit jar.
 */
public final class Main {
  static final String USAGE =
      String.join(
          "\n",
          "usage: olmo-ppl <command> [options]",
          "",
          "commands:",
          "  score            --model DIR --input PATH --output PATH  score the text column of a dataset",
          "  inspect          --model DIR [--json]                    describe a checkpoint (layout, tying, fingerprint)",
          "  make-checkpoint  --layout olmo|hf_olmo|olmo2 --out DIR   write a random-initialised checkpoint",
          "  demo             [--dir DIR]                             train a tiny OLMo (once) and score prose vs noise",
          "  bench            [--model DIR] [--json]                  measure throughput against this machine's ceiling",
          "",
          "Run 'olmo-ppl <command> --help' for the options of a command; README.md explains them all.",
          "--verbose (with any command) prints the stack trace of an error.");

  private Main() {}

  public static void main(String[] args) {
    // exit explicitly: the engine's native threads must not keep a finished driver alive
    System.exit(run(args, System.out, System.err));
  }

  /**
   * Runs one command.
   *
   * @return the exit code: 0 done, 1 the run failed (bad checkpoint, input, output...), 2 bad
   *     command line
   */
  public static int run(String[] args, PrintStream out, PrintStream err) {
    DjlSettings.configure();
    if (args.length == 0
        || args[0].equals("--help")
        || args[0].equals("-h")
        || args[0].equals("help")) {
      (args.length == 0 ? err : out).println(USAGE);
      return args.length == 0 ? 2 : 0;
    }
    boolean verbose = java.util.Arrays.asList(args).contains("--verbose");
    if (verbose) {
      args =
          java.util.Arrays.stream(args).filter(x -> !x.equals("--verbose")).toArray(String[]::new);
      if (args.length == 0) {
        err.println(USAGE);
        return 2;
      }
    }
    String cmd = args[0];
    try {
      if (args.length > 1 && (args[1].equals("--help") || args[1].equals("-h"))) {
        out.println(help(cmd));
        return 0;
      }
      switch (cmd) {
        case "score":
          ScoreCommand.main(args, out, err);
          return 0;
        case "inspect":
          InspectCommand.run(args, out);
          return 0;
        case "make-checkpoint":
          requireDeveloperTools(cmd);
          MakeCheckpointCommand.run(args, out);
          return 0;
        case "demo":
          requireDeveloperTools(cmd);
          DemoCommand.run(args, out);
          return 0;
        case "bench":
          requireDeveloperTools(cmd);
          Bench.run(args, out);
          return 0;
        default:
          throw new UsageException("unknown command '" + cmd + "'");
      }
    } catch (UsageException e) {
      err.println("olmo-ppl: error: " + e.getMessage());
      err.println("Run 'olmo-ppl " + (cmd.startsWith("-") ? "" : cmd + " ") + "--help' for usage.");
      return 2;
    } catch (Exception | LinkageError e) {
      err.println("olmo-ppl: error: " + message(e));
      if (verbose) {
        e.printStackTrace(err);
      } else {
        err.println("(run with --verbose for the stack trace)");
      }
      return 1;
    }
  }

  /**
   * @return the message for the user: the project's own exception where one is in the cause chain
   *     (a task failure reaches the driver wrapped in Spark exceptions), else the first line of the
   *     outermost message
   */
  static String message(Throwable e) {
    for (Throwable c = e; c != null; c = c.getCause() == c ? null : c.getCause()) {
      if ((c instanceof CheckpointException || c instanceof JobException)
          && c.getMessage() != null) {
        return c.getMessage();
      }
    }
    for (Throwable c = e; c != null; c = c.getCause() == c ? null : c.getCause()) {
      boolean ours =
          (c instanceof IllegalArgumentException
                  || c instanceof IllegalStateException
                  || c instanceof IOException
                  || c instanceof UncheckedIOException)
              && c.getStackTrace().length > 0
              && c.getStackTrace()[0].getClassName().startsWith("io.olmoppl.");
      if (ours && c.getMessage() != null) {
        return c.getMessage();
      }
    }
    String m = e.getMessage() == null ? e.getClass().getName() : e.getMessage();
    int nl = m.indexOf('\n');
    return nl < 0 ? m : m.substring(0, nl);
  }

  static String help(String cmd) {
    if (cmd.equals("make-checkpoint") || cmd.equals("demo") || cmd.equals("bench")) {
      requireDeveloperTools(cmd);
    }
    return switch (cmd) {
      case "score" -> ScoreCommand.HELP;
      case "inspect" -> InspectCommand.HELP;
      case "make-checkpoint" -> MakeCheckpointCommand.HELP;
      case "demo" -> DemoCommand.HELP;
      case "bench" -> Bench.HELP;
      default -> throw new UsageException("unknown command '" + cmd + "'");
    };
  }

  /**
   * The developer commands write random checkpoints with udf's checkpoint writer, which the
   * spark-submit jar leaves out (executors never need it); the {@code ./olmo-ppl} launcher has it.
   */
  private static void requireDeveloperTools(String cmd) {
    if (Main.class.getResource("/io/olmoppl/checkpoint/writer/CheckpointMaker.class") == null) {
      throw new JobException(
          "'"
              + cmd
              + "' is a developer command of the ./olmo-ppl launcher in a source checkout;"
              + " the spark-submit jar does not ship the checkpoint writer it needs");
    }
  }

  /** A failure of the run itself, with a message that says what, why and how to fix it. */
  static final class JobException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    JobException(String message) {
      super(message);
    }
  }
}
