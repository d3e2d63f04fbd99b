package io.olmoppl.job;

import io.olmoppl.checkpoint.CheckpointException;
import io.olmoppl.job.cli.Command;
import io.olmoppl.job.cli.JobException;
import io.olmoppl.job.cli.UsageException;
import io.olmoppl.job.demo.DemoCommand;
import io.olmoppl.job.inspect.InspectCommand;
import io.olmoppl.job.score.ScoreCommand;
import io.olmoppl.job.tools.Bench;
import io.olmoppl.job.tools.MakeCheckpointCommand;
import io.olmoppl.runtime.DjlSettings;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.util.Arrays;
import java.util.List;

/**
 * The {@code olmo-ppl} command line: {@code score}, {@code inspect}, {@code make-checkpoint},
 * {@code demo}, {@code bench}. Also the main class of the spark-submit jar.
 */
public final class Main {
  /** The commands, in the order of the usage text. */
  static final List<Command> COMMANDS =
      List.of(
          new ScoreCommand(),
          new InspectCommand(),
          new MakeCheckpointCommand(),
          new DemoCommand(),
          new Bench());

  static final String USAGE =
      String.join(
          "\n",
          "usage: olmo-ppl <command> [options]",
          "",
          "commands:",
          String.join(
              "\n",
              COMMANDS.stream()
                  .map(c -> String.format("  %-17s%s", c.name(), c.oneLine()))
                  .toList()),
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
    boolean verbose = Arrays.asList(args).contains("--verbose");
    if (verbose) {
      args = Arrays.stream(args).filter(x -> !x.equals("--verbose")).toArray(String[]::new);
      if (args.length == 0) {
        err.println(USAGE);
        return 2;
      }
    }
    String cmd = args[0];
    try {
      if (args.length > 1 && (args[1].equals("--help") || args[1].equals("-h"))) {
        out.println(command(cmd).help());
        return 0;
      }
      return command(cmd).run(args, out, err);
    } catch (UsageException e) {
      err.println("olmo-ppl: error: " + e.getMessage());
      err.println("Run 'olmo-ppl " + (cmd.startsWith("-") ? "" : cmd + " ") + "--help' for usage.");
      return 2;
    } catch (Exception | LinkageError e) {
      err.println("olmo-ppl: error: " + message(e));
      java.nio.file.Path log;
      if (verbose) {
        e.printStackTrace(err);
      } else if (!refusal(e) && (log = traceFile(args, e)) != null) {
        err.println("(the full trace is in " + log + "; --verbose prints it here)");
      } else {
        err.println("(run with --verbose for the stack trace)");
      }
      return 1;
    }
  }

  /**
   * @return whether {@code e} is one of the project's own refusals (its message says it all)
   */
  private static boolean refusal(Throwable e) {
    return e instanceof JobException || e instanceof CheckpointException;
  }

  /**
   * Writes the stack trace of a failure (for a failed Spark task, the task's own trace too) to a
   * new file in {@code olmoppl.log.dir} (default: the temporary directory).
   *
   * @return the file, or null if it cannot be written
   */
  static java.nio.file.Path traceFile(String[] args, Throwable e) {
    try {
      java.nio.file.Path dir =
          java.nio.file.Path.of(
              System.getProperty("olmoppl.log.dir", System.getProperty("java.io.tmpdir")));
      java.nio.file.Files.createDirectories(dir);
      String stamp =
          java.time.LocalDateTime.now()
              .format(java.time.format.DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss"));
      java.nio.file.Path f =
          java.nio.file.Files.createTempFile(
              dir, "olmo-ppl-" + stamp + "-" + ProcessHandle.current().pid() + "-", ".log");
      java.io.StringWriter w = new java.io.StringWriter();
      try (java.io.PrintWriter pw = new java.io.PrintWriter(w)) {
        pw.println("olmo-ppl " + String.join(" ", args));
        pw.println("failed at " + java.time.Instant.now() + ":");
        e.printStackTrace(pw);
      }
      java.nio.file.Files.writeString(f, w.toString());
      return f;
    } catch (IOException | RuntimeException ignored) {
      return null;
    }
  }

  /**
   * @return the message for the user: the project's own exception where one is in the cause chain
   *     (a task failure reaches the driver wrapped in Spark exceptions), else the first line of the
   *     outermost message
   */
  public static String message(Throwable e) {
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
    for (Throwable c = e; c != null; c = c.getCause() == c ? null : c.getCause()) {
      // a failed task reaches the driver as "Job aborted due to stage failure: ..." with the task's
      // exception as the cause: name that (and its root) rather than Spark's long first line
      if (c instanceof org.apache.spark.SparkException
          && c.getMessage() != null
          && c.getMessage().startsWith("Job aborted due to stage failure")
          && c.getCause() != null) {
        Throwable root = c.getCause();
        while (root.getCause() != null && root.getCause() != root) {
          root = root.getCause();
        }
        String task = firstLine(c.getCause());
        return "a Spark task failed: "
            + task
            + (root == c.getCause() ? "" : " (caused by " + firstLine(root) + ")");
      }
    }
    String m = e.getMessage() == null ? e.getClass().getName() : e.getMessage();
    int nl = m.indexOf('\n');
    Throwable root = e;
    while (root.getCause() != null && root.getCause() != root) {
      root = root.getCause();
    }
    // Spark 4 rethrows a failed task's own error (e.g. FAILED_READ_FILE): its cause says why
    return (nl < 0 ? m : m.substring(0, nl)).strip()
        + (root == e ? "" : " (caused by " + firstLine(root) + ")");
  }

  /**
   * @return the exception's class and the first line of its message
   */
  private static String firstLine(Throwable t) {
    String m = t.getMessage() == null ? "" : t.getMessage().strip();
    int nl = m.indexOf('\n');
    return t.getClass().getName() + (m.isEmpty() ? "" : ": " + (nl < 0 ? m : m.substring(0, nl)));
  }

  private static Command command(String name) {
    return COMMANDS.stream()
        .filter(c -> c.name().equals(name))
        .findFirst()
        .orElseThrow(() -> new UsageException("unknown command '" + name + "'"));
  }
}
