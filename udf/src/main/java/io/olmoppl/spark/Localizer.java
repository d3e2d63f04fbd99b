package io.olmoppl.spark;

import io.olmoppl.checkpoint.CheckpointException;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;

/**
 * Makes a checkpoint directory readable as local files: a plain path or {@code file:} URI is used in place; any other
 * Hadoop file system ({@code hdfs:}, {@code s3a:}, ...) is copied once per JVM to executor-local disk (then
 * memory-mapped like any local checkpoint).
 */
final class Localizer {
  private Localizer() {}

  static Path localize(String path, String fingerprint) {
    URI uri = URI.create(path.replace(" ", "%20"));
    if (uri.getScheme() == null || uri.getScheme().equals("file")) {
      return uri.getScheme() == null ? Path.of(path) : Path.of(uri);
    }
    Path dir = Path.of(System.getProperty("java.io.tmpdir"), "olmo-ppl-models", fingerprint);
    Path done = dir.resolve(".complete");
    if (Files.exists(done)) {
      return dir;
    }
    try {
      Configuration conf = new Configuration();
      if (org.apache.spark.SparkEnv.get() != null) {
        for (scala.Tuple2<String, String> kv : org.apache.spark.SparkEnv.get().conf().getAll()) {
          if (kv._1().startsWith("spark.hadoop.")) {
            conf.set(kv._1().substring("spark.hadoop.".length()), kv._2());
          }
        }
      }
      org.apache.hadoop.fs.Path src = new org.apache.hadoop.fs.Path(path);
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
