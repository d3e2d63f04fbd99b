package io.olmoppl.job;

import io.olmoppl.DjlSettings;
import io.olmoppl.checkpoint.CheckpointException;
import io.olmoppl.job.Args.UsageException;
import io.olmoppl.job.tools.Bench;
import io.olmoppl.job.tools.MakeCheckpointCommand;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;

/**
 * The {@code olmo-ppl} command line: {@code score}, {@code inspect}, {@code make-checkpoint}, {@code demo},
 * {@code bench}. Also the
 * main class of the spark-submit jar.
 */
public final class Main {
  static final String USAGE = String.join("\n",
      "usage: olmo-ppl <command> [options]",
      "",
      "commands:",
      "  score            --model DIR --input PATH --output PATH  score the text column of a dataset",
      "  inspect          --model DIR [--json]                    describe a checkpoint (layout, tying, fingerprint)",
      "  make-checkpoint  --layout olmo|hf_olmo|olmo2 --out DIR   write a random-initialised checkpoint",
      "  demo             [--dir DIR]                             train a tiny OLMo (once) and score prose vs noise",
      "  bench            [--model DIR] [--json]                  measure throughput against this machine's ceiling",
      "",
      "Run 'olmo-ppl <command> --help' for the options of a command; README.md explains them all.");

  private Main() {}

  public static void main(String[] args) {
    // exit explicitly: the engine's native threads must not keep a finished driver alive
    System.exit(run(args, System.out, System.err));
  }

  /**
   * Runs one command.
   *
   * @return the exit code: 0 done, 1 the run failed (bad checkpoint, input, output...), 2 bad command line
   */
  public static int run(String[] args, PrintStream out, PrintStream err) {
    DjlSettings.configure();
    if (args.length == 0 || args[0].equals("--help") || args[0].equals("-h") || args[0].equals("help")) {
      (args.length == 0 ? err : out).println(USAGE);
      return args.length == 0 ? 2 : 0;
    }
    String cmd = args[0];
    try {
      if (args.length > 1 && (args[1].equals("--help") || args[1].equals("-h"))) {
        out.println(help(cmd));
        return 0;
      }
      switch (cmd) {
        case "score":
          ScoreCommand.main(args, out);
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
    } catch (CheckpointException | IllegalArgumentException | IllegalStateException | Main.JobException e) {
      err.println("olmo-ppl: error: " + e.getMessage());
      return 1;
    } catch (IOException | UncheckedIOException e) {
      err.println("olmo-ppl: error: " + e.getMessage());
      return 1;
    }
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
   * The developer commands write random checkpoints with the udf test-jar's writer, which the spark-submit jar leaves
   * out (executors never need it); the {@code ./olmo-ppl} launcher has it.
   */
  private static void requireDeveloperTools(String cmd) {
    if (Main.class.getResource("/io/olmoppl/checkpoint/CheckpointMaker.class") == null) {
      throw new JobException("'" + cmd + "' is a developer command of the ./olmo-ppl launcher in a source checkout;"
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
