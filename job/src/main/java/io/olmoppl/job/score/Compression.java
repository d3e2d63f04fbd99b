package io.olmoppl.job.score;

import java.io.IOException;
import java.io.InputStream;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.io.compress.CompressionCodec;
import org.apache.hadoop.io.compress.CompressionCodecFactory;

/**
 * Whether Spark can read a text file (JSON lines, CSV, text) as it is named. Spark decompresses a
 * file by the codec its extension names (Hadoop's {@link CompressionCodecFactory}) and reads
 * anything else as plain text; a file whose bytes are in another format is read as garbage or as
 * nothing, and its rows are lost without an error. So the first bytes of every file are compared
 * with the magic numbers of the common compression formats, and a file the codec of its name is
 * meant for is opened through that codec (which fails, for example, when the codec's native library
 * is missing).
 */
final class Compression {
  /** A compression format recognised by the first bytes of a file. */
  private record Magic(String name, String hex) {
    boolean matches(byte[] head, int n) {
      byte[] m = HexFormat.of().parseHex(hex);
      if (n < m.length) {
        return false;
      }
      for (int i = 0; i < m.length; i++) {
        if (head[i] != m[i]) {
          return false;
        }
      }
      return true;
    }
  }

  /** Magic numbers no text file starts with (control bytes or invalid UTF-8 in the first four). */
  private static final List<Magic> MAGICS =
      List.of(
          new Magic("gzip", "1f8b"),
          new Magic("zstd", "28b52ffd"),
          new Magic("xz", "fd377a585a00"),
          new Magic("LZ4 frame", "04224d18"),
          new Magic("LZ4 legacy frame", "02214c18"),
          new Magic("zip", "504b0304"),
          new Magic("7z", "377abcaf271c"),
          new Magic("framed snappy", "ff060000734e61507059"));

  private static final int HEAD = 10;

  private final Configuration conf;
  private final CompressionCodecFactory codecs;

  Compression(Configuration conf) {
    this.conf = conf;
    this.codecs = new CompressionCodecFactory(conf);
  }

  /**
   * @return why Spark cannot read {@code file} as named (a sentence with the fix), or null when it
   *     can
   */
  String problem(FileStatus file) throws IOException {
    if (file.getLen() == 0) {
      return null;
    }
    FileSystem fs = file.getPath().getFileSystem(conf);
    byte[] head = new byte[HEAD];
    int n;
    try (FSDataInputStream in = fs.open(file.getPath())) {
      n = readUpTo(in, head);
    }
    String found = sniff(head, n);
    CompressionCodec codec = codecs.getCodec(file.getPath());
    if (codec == null) {
      return found == null
          ? null
          : "holds "
              + found
              + "-compressed data, but its name has no extension of a codec Hadoop"
              + " decompresses, so Spark would read the compressed bytes as text. Decompress it, or"
              + " name it by its compression (.gz, .bz2, .zst).";
    }
    String expected = expected(codec);
    if (found != null && !found.equals(expected)) {
      return "holds "
          + found
          + "-compressed data, but its extension "
          + codec.getDefaultExtension()
          + " makes Spark read it with Hadoop's "
          + codec.getClass().getSimpleName()
          + (found.startsWith("LZ4")
              ? ", which reads Hadoop's own LZ4 block format, not the lz4 tool's frame format"
              : "")
          + ", so its rows would be lost. Decompress it (e.g. lz4 -d, unzstd, xz -d), or"
          + " recompress it with gzip or bzip2 and name it .gz or .bz2.";
    }
    try (InputStream in = codec.createInputStream(fs.open(file.getPath()))) {
      readUpTo(in, new byte[4096]);
    } catch (IOException | RuntimeException | LinkageError e) {
      return "cannot be read with Hadoop's "
          + codec.getClass().getSimpleName()
          + ", which its extension "
          + codec.getDefaultExtension()
          + " selects ("
          + e.getClass().getSimpleName()
          + ": "
          + e.getMessage()
          + "). Check the file, or recompress it with gzip or bzip2 and name it .gz or .bz2.";
    }
    return null;
  }

  /**
   * @return the format the codec reads, as {@link #sniff} names it; null for a format without a
   *     magic number (Hadoop's LZ4 and snappy block formats, raw deflate)
   */
  private static String expected(CompressionCodec codec) {
    return switch (codec.getDefaultExtension().toLowerCase(Locale.ROOT)) {
      case ".gz" -> "gzip";
      case ".bz2" -> "bzip2";
      case ".zst" -> "zstd";
      default -> null;
    };
  }

  /**
   * @return the compression format the first bytes show, or null
   */
  static String sniff(byte[] head, int n) {
    for (Magic m : MAGICS) {
      if (m.matches(head, n)) {
        return m.name();
      }
    }
    // "BZh" and a block size 1-9, then the magic of a block or of the end of the stream
    if (n >= 10 && head[0] == 'B' && head[1] == 'Z' && head[2] == 'h') {
      if (head[3] >= '1' && head[3] <= '9') {
        String rest = HexFormat.of().formatHex(head, 4, 10);
        if (rest.equals("314159265359") || rest.equals("177245385090")) {
          return "bzip2";
        }
      }
    }
    return null;
  }

  private static int readUpTo(InputStream in, byte[] buf) throws IOException {
    int n = 0;
    while (n < buf.length) {
      int r = in.read(buf, n, buf.length - n);
      if (r < 0) {
        break;
      }
      n += r;
    }
    return n;
  }
}
