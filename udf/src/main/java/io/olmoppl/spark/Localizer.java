package io.olmoppl.spark;

import io.olmoppl.checkpoint.CheckpointException;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Pattern;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.spark.SparkEnv;
import scala.Tuple2;

/**
 * Makes a checkpoint directory readable as local files: a plain path or {@code file:} URI is used in place; any other
 * Hadoop file system ({@code hdfs:}, {@code s3a:}, ...) is copied once per JVM to executor-local disk (then
 * memory-mapped like any local checkpoint).
 */
public final class Localizer {
  /** An RFC 3986 scheme followed by a colon: {@code hdfs:}, {@code s3a:}, {@code file:}. */
  private static final Pattern SCHEME = Pattern.compile("^[a-zA-Z][a-zA-Z0-9+.-]*:");

  private Localizer() {}

  /**
   * The one answer to "is this model path local?", for the CLI and the library alike.
   *
   * @param path a plain path, a {@code file:} URI or a Hadoop file system URI
   * @return the local path of a plain path or {@code file:} URI; null for any other scheme
   */
  public static Path localPath(String path) {
    if (!SCHEME.matcher(path).find()) {
      return Path.of(path);
    }
    if (!path.regionMatches(true, 0, "file:", 0, 5)) {
      return null;
    }
    URI uri = URI.create(path.replace(" ", "%20"));
    return Path.of(uri.getPath() != null ? uri.getPath() : uri.getSchemeSpecificPart());
  }

  static Path localize(String path, String fingerprint) {
    Path local = localPath(path);
    if (local != null) {
      return local;
    }
    Path dir = Path.of(System.getProperty("java.io.tmpdir"), "olmo-ppl-models", fingerprint);
    Path done = dir.resolve(".complete");
    if (Files.exists(done)) {
      return dir;
    }
    try {
      Configuration conf = new Configuration();
      if (SparkEnv.get() != null) {
        for (Tuple2<String, String> kv : SparkEnv.get().conf().getAll()) {
          if (kv._1().startsWith("spark.hadoop.")) {
            conf.set(kv._1().substring("spark.hadoop.".length()), kv._2());
          }
        }
      }
      org.apache.hadoop.fs.Path src = new org.apache.hadoop.fs.Path(path); // not java.nio.file.Path
      FileSystem fs = src.getFileSystem(conf);
      Files.createDirectories(dir);
      for (FileStatus s : fs.listStatus(src)) {
        if (s.isFile()) {
          fs.copyToLocalFile(false, s.getPath(), new org.apache.hadoop.fs.Path(dir.resolve(s.getPath().getName())
              .toUri()), true);
        }
      }
      Files.writeString(done, fingerprint);
      return dir;
    } catch (IOException e) {
      throw new CheckpointException("cannot copy the checkpoint " + path + " to executor-local disk " + dir + ": "
          + e.getMessage() + ". Check that every executor can read the path and has space in java.io.tmpdir.", e);
    }
  }
}
