package io.olmoppl.job.score;

import io.olmoppl.job.cli.JobException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.StringReader;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.time.Instant;
import java.util.Properties;
import java.util.UUID;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * A run's claim on an output path: the lock file {@code .NAME.olmo-ppl.lock} beside it, created
 * exclusively (a local file with {@code O_CREAT|O_EXCL}, any other file system with {@code
 * create(overwrite=false)}, which HDFS makes atomic; object stores such as S3A do not, so two runs
 * started at the same instant there may both get it). It holds the host, process and start time of
 * the run, so that a second run names the one in its way. Released (deleted, only if still this
 * run's) when the run ends, however it ends; a run killed outright leaves it behind, and the
 * message of the next run says how to clear it.
 */
final class Claim implements AutoCloseable {
  private final FileSystem fs;
  private final Path lock;
  private final String id;

  private Claim(FileSystem fs, Path lock, String id) {
    this.fs = fs;
    this.lock = lock;
    this.id = id;
  }

  /**
   * @return the lock file of {@code target}: a hidden sibling, so that readers of the parent folder
   *     skip it
   */
  static Path lockOf(Path target) {
    return new Path(target.getParent(), "." + target.getName() + ".olmo-ppl.lock");
  }

  /**
   * Claims {@code target} for this run.
   *
   * @param flag the option that named it, for messages
   * @throws JobException when another run holds it, or its folder cannot be written
   */
  static Claim take(FileSystem fs, Path target, String flag, String named) {
    Path lock = lockOf(target);
    String id = UUID.randomUUID().toString();
    byte[] body = describe(id).getBytes(StandardCharsets.UTF_8);
    try {
      if (!fs.mkdirs(target.getParent())) {
        throw new IOException("cannot create the folder " + target.getParent());
      }
    } catch (IOException | RuntimeException e) {
      throw unwritable(flag, named, e);
    }
    try {
      if ("file".equals(fs.getUri().getScheme())) {
        java.nio.file.Path local = Paths.get(fs.makeQualified(lock).toUri());
        Files.write(local, body, java.nio.file.StandardOpenOption.CREATE_NEW);
      } else {
        try (OutputStream o = fs.create(lock, false)) {
          o.write(body);
        }
      }
    } catch (FileAlreadyExistsException | org.apache.hadoop.fs.FileAlreadyExistsException e) {
      throw held(fs, lock, flag, named);
    } catch (IOException | RuntimeException e) {
      throw unwritable(flag, named, e);
    }
    return new Claim(fs, lock, id);
  }

  private static JobException unwritable(String flag, String named, Exception e) {
    return new JobException(
        flag
            + " "
            + named
            + " cannot be written ("
            + firstLine(e)
            + "). Choose a path whose parent is a directory you can write, before any scoring is"
            + " done.");
  }

  private static String describe(String id) {
    String host;
    try {
      host = InetAddress.getLocalHost().getHostName();
    } catch (IOException e) {
      host = "unknown";
    }
    return "# an olmo-ppl run is writing the output beside this file\n"
        + "run="
        + id
        + "\nhost="
        + host
        + "\npid="
        + ProcessHandle.current().pid()
        + "\nstarted="
        + Instant.now()
        + "\n";
  }

  private static JobException held(FileSystem fs, Path lock, String flag, String named) {
    Properties p = read(fs, lock);
    String host = p.getProperty("host", "?");
    String pid = p.getProperty("pid", "?");
    String stale = "";
    try {
      if (host.equals(InetAddress.getLocalHost().getHostName())
          && ProcessHandle.of(Long.parseLong(pid)).isEmpty()) {
        stale = " Process " + pid + " is not running on this machine: the lock is stale.";
      }
    } catch (IOException | NumberFormatException e) {
      // the holder cannot be checked: say what the lock says
    }
    return new JobException(
        flag
            + " "
            + named
            + " is being written by another olmo-ppl run (lock "
            + lock
            + ": host "
            + host
            + ", pid "
            + pid
            + ", started "
            + p.getProperty("started", "?")
            + "). This run changed nothing; run it again when that one has finished."
            + stale
            + " If no such run is alive (it was killed, or its machine died), delete the lock file"
            + " (and that run's unfinished ."
            + lock.getName().substring(1, lock.getName().length() - ".olmo-ppl.lock".length())
            + ".olmo-ppl-new-* folder, if any) and run again.");
  }

  private static Properties read(FileSystem fs, Path lock) {
    Properties p = new Properties();
    try (InputStream in = fs.open(lock)) {
      p.load(new StringReader(new String(in.readAllBytes(), StandardCharsets.UTF_8)));
    } catch (IOException | IllegalArgumentException e) {
      // released meanwhile, or not written yet: the message says what is known
    }
    return p;
  }

  /** Deletes the lock if it is still this run's. */
  @Override
  public void close() {
    try {
      if (id.equals(read(fs, lock).getProperty("run"))) {
        fs.delete(lock, false);
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot remove the lock " + lock, e);
    }
  }

  static String firstLine(Throwable e) {
    String m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    int nl = m.indexOf('\n');
    return nl < 0 ? m : m.substring(0, nl);
  }
}
