package io.olmoppl.spark;

import io.olmoppl.checkpoint.CheckpointException;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.UUID;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.apache.commons.io.FileUtils;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.spark.SparkEnv;
import scala.Tuple2;

/**
 * Makes a checkpoint directory readable as local files: a plain path or {@code file:} URI is used
 * in place; any other Hadoop file system ({@code hdfs:}, {@code s3a:}, ...) is copied to local disk
 * (then memory-mapped like any local checkpoint).
 *
 * <p>A copy is keyed by what the files are, not where they are: the path, every file's name, size
 * and modification time, and a hash of its first {@value #HEAD_BYTES} bytes (a safetensors header).
 * A checkpoint replaced at the same path gets a new copy. Each JVM copies into a private temporary
 * folder and renames it into place atomically, so JVMs on one host never see a half-written copy;
 * other copies of the same path are then deleted.
 */
public final class Localizer {
  static final int HEAD_BYTES = 1 << 16;
  private static final String SOURCE_FILE = ".source";

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

  static Path localize(String path) {
    return localize(
        path, hadoopConf(), Path.of(System.getProperty("java.io.tmpdir"), "olmo-ppl-models"));
  }

  /**
   * @param root the folder holding the local copies
   */
  static Path localize(String path, Configuration conf, Path root) {
    Path local = localPath(path);
    if (local != null) {
      return local;
    }
    Path dir = null;
    try {
      org.apache.hadoop.fs.Path src = new org.apache.hadoop.fs.Path(path);
      FileSystem fs = src.getFileSystem(conf);
      FileStatus[] files =
          Arrays.stream(fs.listStatus(src))
              .filter(FileStatus::isFile)
              .sorted(Comparator.comparing(s -> s.getPath().getName()))
              .toArray(FileStatus[]::new);
      String key = key(fs, path, files);
      dir = root.resolve(key);
      if (Files.isDirectory(dir)) {
        return dir;
      }
      Files.createDirectories(root);
      Path tmp = root.resolve(".tmp-" + key + "-" + UUID.randomUUID());
      Files.createDirectories(tmp);
      try {
        for (FileStatus s : files) {
          fs.copyToLocalFile(
              false,
              s.getPath(),
              new org.apache.hadoop.fs.Path(tmp.resolve(s.getPath().getName()).toUri()),
              true);
        }
        Files.writeString(tmp.resolve(SOURCE_FILE), path);
        try {
          Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
        } catch (
            IOException
                e) { // "directory not empty" or "exists": another JVM renamed its copy first
          if (!Files.isDirectory(dir)) {
            throw e;
          }
        }
      } finally {
        FileUtils.deleteDirectory(
            tmp.toFile()); // left over only when another JVM renamed its copy first, or on failure
      }
      removeOlderCopies(root, path, key);
      return dir;
    } catch (IOException e) {
      throw new CheckpointException(
          "cannot copy the checkpoint "
              + path
              + " to local disk "
              + (dir == null ? root : dir)
              + ": "
              + e.getMessage()
              + ". Check that every executor can read the path and has space in"
              + " java.io.tmpdir.",
          e);
    }
  }

  private static String key(FileSystem fs, String path, FileStatus[] files) throws IOException {
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      md.update((path + "\n").getBytes(StandardCharsets.UTF_8));
      byte[] head = new byte[HEAD_BYTES];
      for (FileStatus s : files) {
        md.update(
            (s.getPath().getName() + "|" + s.getLen() + "|" + s.getModificationTime() + "\n")
                .getBytes(StandardCharsets.UTF_8));
        try (InputStream in = fs.open(s.getPath())) {
          int n = in.readNBytes(head, 0, head.length);
          md.update(head, 0, n);
        }
      }
      return HexFormat.of().formatHex(md.digest()).substring(0, 24);
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * Deletes the other complete copies of {@code path} (a process still mapping their files keeps
   * reading them).
   */
  private static void removeOlderCopies(Path root, String path, String key) throws IOException {
    try (Stream<Path> s = Files.list(root)) {
      for (Path d : s.toList()) {
        Path src = d.resolve(SOURCE_FILE);
        if (!d.getFileName().toString().equals(key)
            && !d.getFileName().toString().startsWith(".")
            && Files.isRegularFile(src)
            && Files.readString(src).equals(path)) {
          FileUtils.deleteDirectory(d.toFile());
        }
      }
    }
  }

  private static Configuration hadoopConf() {
    Configuration conf = new Configuration();
    if (SparkEnv.get() != null) {
      for (Tuple2<String, String> kv : SparkEnv.get().conf().getAll()) {
        if (kv._1().startsWith("spark.hadoop.")) {
          conf.set(kv._1().substring("spark.hadoop.".length()), kv._2());
        }
      }
    }
    return conf;
  }
}
