package io.olmoppl.job.report;

import static org.apache.spark.sql.functions.coalesce;
import static org.apache.spark.sql.functions.count;
import static org.apache.spark.sql.functions.lit;
import static org.apache.spark.sql.functions.octet_length;
import static org.apache.spark.sql.functions.sum;

import io.olmoppl.job.cli.UsageException;
import io.olmoppl.spark.ScoreMetrics;
import java.io.PrintStream;
import java.time.LocalTime;
import java.time.format.DateTimeFormatter;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import org.apache.spark.Success$;
import org.apache.spark.scheduler.AccumulableInfo;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerExecutorMetricsUpdate;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

/**
 * The progress display of a scoring run: documents and tokens scored, tokens/s, percentage and ETA.
 * The total is a count of the input rows and of their UTF-8 bytes made before scoring (bytes stand
 * in for tokens: the percentage and the ETA are by bytes, so long and short documents weigh what
 * they cost). The counts come from {@link ScoreMetrics} accumulators read by a {@link
 * SparkListener} on the driver: a running task's values arrive with each executor heartbeat ({@code
 * spark.executor.heartbeatInterval}, 10 s by default), a finished task's at its end; a failed
 * task's partial counts are dropped. Nothing polls the output, and local and cluster masters work
 * the same.
 *
 * <p>On a terminal the line is redrawn in place on stderr every second; otherwise one line is
 * printed every {@code interval} seconds (default 30). A final line is printed when scoring is
 * done.
 */
public final class Progress extends SparkListener implements AutoCloseable {
  static final double INTERVAL_DEFAULT = 30;
  static final long DRAIN_MS = 5000;

  /**
   * The executor heartbeat interval of sessions olmo-ppl starts: a running task's counts (updated
   * after every forward batch) reach the driver this often.
   */
  public static final String HEARTBEAT = "2s";

  /** Where and how often progress is shown. */
  public enum Mode {
    AUTO,
    TERMINAL,
    LOG,
    OFF;

    public static Mode parse(String s) {
      return switch (s.toLowerCase(Locale.ROOT)) {
        case "auto" -> AUTO;
        case "terminal" -> TERMINAL;
        case "log" -> LOG;
        case "off" -> OFF;
        default ->
            throw new UsageException(
                "--progress must be auto, terminal, log or off, not '" + s + "'");
      };
    }
  }

  private final SparkSession spark;
  private final long[] ids;
  private final long totalDocs;
  private final long totalBytes;
  private final boolean terminal;
  private final PrintStream err;
  private final LongSupplier nanos;
  private final long start;
  private final ScheduledExecutorService timer;

  /** documents, tokens, bytes of successful finished tasks */
  private final long[] finished = new long[3];

  /** latest heartbeat values of running tasks */
  private final Map<Long, long[]> running = new HashMap<>();

  /** documents, bytes carried from {@code --previous}: done without a task */
  private final long[] carried = new long[2];

  private final Set<Long> ended = new HashSet<>();
  private volatile boolean closed;

  Progress(
      SparkSession spark,
      ScoreMetrics metrics,
      long totalDocs,
      long totalBytes,
      boolean terminal,
      double intervalSeconds,
      PrintStream err,
      LongSupplier nanos) {
    this.spark = spark;
    this.ids = metrics.progressIds();
    this.totalDocs = totalDocs;
    this.totalBytes = totalBytes;
    this.terminal = terminal;
    this.err = err;
    this.nanos = nanos;
    this.start = nanos.getAsLong();
    if (spark != null) {
      spark.sparkContext().addSparkListener(this);
      long periodMs = Math.max(1, Math.round(1000 * (terminal ? 1 : intervalSeconds)));
      timer =
          Executors.newSingleThreadScheduledExecutor(
              r -> {
                Thread t = new Thread(r, "olmo-ppl-progress");
                t.setDaemon(true);
                return t;
              });
      timer.scheduleAtFixedRate(this::show, periodMs, periodMs, TimeUnit.MILLISECONDS);
    } else {
      timer = null;
    }
  }

  /**
   * Counts the input (one cheap pass: rows and UTF-8 bytes of the text column) and starts showing
   * progress.
   *
   * @return the display, or null with {@code --progress off}
   */
  public static Progress start(
      SparkSession spark,
      Dataset<Row> input,
      String textColumn,
      ScoreMetrics metrics,
      Mode mode,
      double intervalSeconds,
      PrintStream err) {
    if (mode == Mode.OFF) {
      return null;
    }
    long[] total = measure(input, textColumn);
    boolean terminal = mode == Mode.TERMINAL || (mode == Mode.AUTO && stderrIsTerminal());
    return new Progress(
        spark, metrics, total[0], total[1], terminal, intervalSeconds, err, System::nanoTime);
  }

  /**
   * @return rows and UTF-8 bytes of the text column of {@code rows} (one cheap pass)
   */
  private static long[] measure(Dataset<Row> rows, String textColumn) {
    Row total =
        rows.agg(count(lit(1)), coalesce(sum(octet_length(Columns.named(textColumn))), lit(0L)))
            .first();
    return new long[] {total.getLong(0), ((Number) total.get(1)).longValue()};
  }

  /**
   * @return the input rows counted before scoring
   */
  public long totalDocuments() {
    return totalDocs;
  }

  /**
   * Counts the input rows that {@code --previous} carries (the input less {@code toScore}) as done
   * from the start: a run whose rows are all carried is at 100 %, and the ETA is from the rate of
   * the rows actually scored.
   */
  public void carried(Dataset<Row> toScore, String textColumn) {
    long[] rest = measure(toScore, textColumn);
    synchronized (this) {
      carried[0] = Math.max(0, totalDocs - rest[0]);
      carried[1] = Math.max(0, totalBytes - rest[1]);
    }
  }

  /**
   * @return whether stderr is a terminal: the launcher passes {@code -Dolmoppl.stderr.tty}; without
   *     it (spark-submit) a console means an interactive session
   */
  static boolean stderrIsTerminal() {
    String p = System.getProperty("olmoppl.stderr.tty");
    return p != null ? Boolean.parseBoolean(p) : System.console() != null;
  }

  @Override
  public void onExecutorMetricsUpdate(SparkListenerExecutorMetricsUpdate e) {
    var it = e.accumUpdates().iterator();
    while (it.hasNext()) {
      var u = it.next();
      long task = (Long) u._1();
      long[] v = values(u._4());
      if (v != null) {
        synchronized (this) {
          if (!ended.contains(
              task)) { // a heartbeat sent before the task ended may arrive after its end
            running.put(task, v);
          }
        }
      }
    }
  }

  @Override
  public void onTaskEnd(SparkListenerTaskEnd e) {
    long task = e.taskInfo().taskId();
    long[] v = e.reason() == Success$.MODULE$ ? values(e.taskInfo().accumulables()) : null;
    synchronized (this) {
      ended.add(task);
      running.remove(task);
      if (v != null) {
        for (int i = 0; i < 3; i++) {
          finished[i] += v[i];
        }
      }
    }
  }

  /**
   * @return documents, tokens, bytes (a task's updates) of our accumulators in {@code infos}, or
   *     null if none
   */
  private long[] values(scala.collection.Seq<AccumulableInfo> infos) {
    long[] v = null;
    var it = infos.iterator();
    while (it.hasNext()) {
      AccumulableInfo a = it.next();
      for (int i = 0; i < 3; i++) {
        if (a.id() == ids[i]) {
          var x = a.update();
          if (x.isDefined()) {
            if (v == null) {
              v = new long[3];
            }
            v[i] = ((Number) x.get()).longValue();
          }
        }
      }
    }
    return v;
  }

  /**
   * @return documents, tokens, bytes scored so far
   */
  synchronized long[] done() {
    long[] d = finished.clone();
    for (long[] r : running.values()) {
      for (int i = 0; i < 3; i++) {
        d[i] += r[i];
      }
    }
    d[0] += carried[0];
    d[2] += carried[1];
    return d;
  }

  /**
   * @return the progress line for the counts so far
   */
  String line() {
    long[] d = done();
    long carriedBytes;
    synchronized (this) {
      carriedBytes = carried[1];
    }
    double seconds = (nanos.getAsLong() - start) / 1e9;
    return format(d[0], d[1], d[2], carriedBytes, totalDocs, totalBytes, seconds);
  }

  /** As below, nothing carried. */
  static String format(
      long docs, long tokens, long bytes, long totalDocs, long totalBytes, double seconds) {
    return format(docs, tokens, bytes, 0, totalDocs, totalBytes, seconds);
  }

  /**
   * The progress line: counts, rate, percentage (by bytes) and ETA (remaining bytes at the rate so
   * far of the bytes scored, i.e. not counting {@code carriedBytes}, which were done at once).
   */
  static String format(
      long docs,
      long tokens,
      long bytes,
      long carriedBytes,
      long totalDocs,
      long totalBytes,
      double seconds) {
    double fraction =
        totalBytes > 0
            ? (double) bytes / totalBytes
            : totalDocs > 0 ? (double) docs / totalDocs : 1;
    fraction = Math.min(1, fraction); // a retried or speculative task may count twice
    String eta;
    if (fraction >= 1) {
      eta = "done";
    } else if (seconds > 0 && totalBytes > 0 && bytes > carriedBytes) {
      eta = "ETA " + clock(seconds * (totalBytes - bytes) / (double) (bytes - carriedBytes));
    } else if (seconds > 0 && totalBytes <= 0 && fraction > 0) {
      eta = "ETA " + clock(seconds * (1 - fraction) / fraction);
    } else {
      eta = "ETA --:--:--";
    }
    return String.format(
        Locale.ROOT,
        "olmo-ppl: %,d/%,d documents, %,d tokens, %,.0f tokens/s, %.1f%%, %s, %s elapsed",
        docs,
        totalDocs,
        tokens,
        seconds > 0 ? tokens / seconds : 0.0,
        100 * fraction,
        eta,
        clock(seconds));
  }

  /**
   * @return {@code h:mm:ss}
   */
  static String clock(double seconds) {
    long s = Math.round(seconds);
    return String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
  }

  private synchronized void show() {
    if (closed) {
      return;
    }
    if (terminal) {
      err.print("\r" + line() + "\033[K");
      err.flush();
    } else {
      err.println(LocalTime.now().format(DateTimeFormatter.ofPattern("HH:mm:ss")) + " " + line());
    }
  }

  /**
   * Stops the display and prints the final line. Listener events arrive asynchronously: the last
   * task ends may be queued when the scoring job returns, so this waits (at most {@link #DRAIN_MS})
   * until every counted row is seen.
   */
  @Override
  public void close() {
    if (timer != null) {
      timer.shutdownNow();
    }
    long deadline = System.nanoTime() + DRAIN_MS * 1_000_000;
    while (spark != null && !closed && done()[0] < totalDocs && System.nanoTime() < deadline) {
      try {
        Thread.sleep(20);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
    }
    if (spark != null) {
      spark.sparkContext().removeSparkListener(this);
    }
    synchronized (this) {
      if (closed) {
        return;
      }
      closed = true;
      if (terminal) {
        err.println("\r" + line() + "\033[K");
      } else {
        err.println(LocalTime.now().format(DateTimeFormatter.ofPattern("HH:mm:ss")) + " " + line());
      }
    }
  }
}
