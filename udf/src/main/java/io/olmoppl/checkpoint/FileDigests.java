package io.olmoppl.checkpoint;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import net.jpountz.xxhash.XXHash64;
import net.jpountz.xxhash.XXHashFactory;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Content digests of weight files, computed once per file and kept in a local cache keyed by the
 * file's identity, so that the fingerprint of a checkpoint covers every weight byte without reading
 * them on each run.
 *
 * <p>A digest is SHA-256 over the file's size and the XXH64 (lz4-java, as Spark ships it) of each
 * {@link #BLOCK_BYTES} block, the blocks hashed in parallel: about 7 GB/s per core against 1 GB/s
 * for SHA-256 of the whole file, so that a first run costs about what reading the file costs.
 *
 * <p>The cache ({@code ~/.cache/olmo-ppl/fingerprints/}, or the {@value #CACHE_PROPERTY} system
 * property, or the {@value #CACHE_ENV} environment variable; {@code none} turns it off) holds one
 * small JSON entry per file: its real path, size, modification time, change time and file key
 * (device and inode), a probe digest of {@link #PROBES} small blocks spread over the file, and the
 * digest. An entry is used only when all of these still match, so a file that is replaced,
 * rewritten or touched is hashed again. The cache is never written beside the checkpoint: a model
 * directory is often read-only or shared, and olmo-ppl writes nothing it was not asked to. A cache
 * that cannot be written costs only the time of hashing again.
 */
public final class FileDigests {
  private static final Logger LOG = LoggerFactory.getLogger(FileDigests.class);

  /** The system property naming the cache directory ({@code none}: no cache). */
  public static final String CACHE_PROPERTY = "olmoppl.fingerprint.cache";

  /** The environment variable naming the cache directory, below the property. */
  public static final String CACHE_ENV = "OLMO_PPL_FINGERPRINT_CACHE";

  /** Bytes per independently hashed block. */
  static final long BLOCK_BYTES = 64L << 20;

  /** Blocks of {@link #PROBE_BYTES} read to verify a cache entry. */
  static final int PROBES = 32;

  static final int PROBE_BYTES = 4096;

  /** Changes whenever the digest's definition changes; entries of another version are ignored. */
  private static final int VERSION = 1;

  private static final XXHash64 XXH64 = XXHashFactory.fastestInstance().hash64();

  private final Path cacheDir;

  private FileDigests(Path cacheDir) {
    this.cacheDir = cacheDir;
  }

  /**
   * @param cacheDir where entries are kept, or null for no cache
   */
  public static FileDigests in(Path cacheDir) {
    return new FileDigests(cacheDir);
  }

  /**
   * @return digests cached where {@link #CACHE_PROPERTY}, {@link #CACHE_ENV} or the default say
   */
  public static FileDigests defaults() {
    String dir = System.getProperty(CACHE_PROPERTY);
    if (dir == null || dir.isBlank()) {
      dir = System.getenv(CACHE_ENV);
    }
    if (dir == null || dir.isBlank()) {
      return in(Path.of(System.getProperty("user.home"), ".cache", "olmo-ppl", "fingerprints"));
    }
    return in(dir.trim().equals("none") ? null : Path.of(dir.trim()));
  }

  /**
   * A file's digest and whether it came from the cache.
   *
   * @param digest 32 hex digits
   */
  public record Digest(String digest, boolean cached) {}

  /**
   * @return the digest of {@code file}'s content, from the cache when the entry still matches the
   *     file
   * @throws CheckpointException when the file cannot be read
   */
  public Digest of(Path file) {
    try {
      Path real = file.toRealPath();
      String identity = identity(real);
      Path entry = cacheDir == null ? null : cacheDir.resolve(sha256Hex(real.toString()) + ".json");
      String probe = probe(real);
      String cached = entry == null ? null : lookup(entry, identity, probe);
      if (cached != null) {
        return new Digest(cached, true);
      }
      String digest = digest(real);
      // a file that changed while it was read gets no entry: its digest describes no one state
      if (entry != null && identity.equals(identity(real)) && probe.equals(probe(real))) {
        store(entry, real, identity, probe, digest);
        prune(entry.getParent());
      }
      return new Digest(digest, false);
    } catch (IOException e) {
      throw CheckpointErrors.cannotRead(file, e);
    }
  }

  /** What names one version of a file on this machine: path, size, times and file key. */
  private static String identity(Path real) throws IOException {
    BasicFileAttributes a = Files.readAttributes(real, BasicFileAttributes.class);
    Object ctime;
    try {
      ctime = Files.getAttribute(real, "unix:ctime"); // set by the kernel on every change
    } catch (UnsupportedOperationException | IllegalArgumentException e) {
      ctime = "-";
    }
    return real
        + "|"
        + a.size()
        + "|"
        + a.lastModifiedTime().to(TimeUnit.NANOSECONDS)
        + "|"
        + ctime
        + "|"
        + a.fileKey();
  }

  /** XXH64 of {@link #PROBES} blocks spread evenly over the file, first and last included. */
  private static String probe(Path real) throws IOException {
    try (FileChannel ch = FileChannel.open(real, StandardOpenOption.READ)) {
      long size = ch.size();
      ByteBuffer buf = ByteBuffer.allocateDirect(PROBE_BYTES);
      long h = size;
      for (int i = 0; i < PROBES; i++) {
        long pos = Math.max(0, (size - PROBE_BYTES) * i / (PROBES - 1));
        buf.clear();
        while (buf.hasRemaining() && ch.read(buf, pos + buf.position()) > 0) {}
        h = XXH64.hash(buf, 0, buf.position(), h);
      }
      return Long.toHexString(h);
    }
  }

  /** SHA-256 over the size and each block's XXH64; the first 32 hex digits. */
  static String digest(Path real) throws IOException {
    try (FileChannel ch = FileChannel.open(real, StandardOpenOption.READ)) {
      long size = ch.size();
      int blocks = (int) Math.max(1, (size + BLOCK_BYTES - 1) / BLOCK_BYTES);
      long[] hashes = new long[blocks];
      IOException[] failed = new IOException[1];
      IntStream.range(0, blocks)
          .parallel()
          .forEach(
              i -> {
                long pos = i * BLOCK_BYTES;
                int len = (int) Math.min(BLOCK_BYTES, size - pos);
                if (len <= 0) {
                  return;
                }
                try {
                  ByteBuffer b = ch.map(FileChannel.MapMode.READ_ONLY, pos, len);
                  try {
                    hashes[i] = XXH64.hash(b, 0, len, i);
                  } finally {
                    SafetensorsFile.unmap(List.of(b));
                  }
                } catch (IOException e) {
                  failed[0] = e;
                }
              });
      if (failed[0] != null) {
        throw failed[0];
      }
      ByteBuffer all = ByteBuffer.allocate(8 * (blocks + 2));
      all.putLong(VERSION).putLong(size);
      for (long h : hashes) {
        all.putLong(h);
      }
      return HexFormat.of().formatHex(sha256(all.array())).substring(0, 32);
    }
  }

  private static String lookup(Path entry, String identity, String probe) {
    try {
      if (!Files.isRegularFile(entry)) {
        return null;
      }
      JsonObject o = JsonParser.parseString(Files.readString(entry)).getAsJsonObject();
      if (o.get("version").getAsInt() == VERSION
          && o.get("identity").getAsString().equals(identity)
          && o.get("probe").getAsString().equals(probe)) {
        return o.get("digest").getAsString();
      }
    } catch (IOException | RuntimeException e) {
      LOG.debug(
          "olmo-ppl: ignoring unreadable fingerprint cache entry {}: {}", entry, e.toString());
    }
    return null;
  }

  private static void store(Path entry, Path real, String identity, String probe, String digest) {
    JsonObject o = new JsonObject();
    o.addProperty("version", VERSION);
    o.addProperty("path", real.toString());
    o.addProperty("identity", identity);
    o.addProperty("probe", probe);
    o.addProperty("digest", digest);
    try {
      Files.createDirectories(entry.getParent());
      Path tmp = Files.createTempFile(entry.getParent(), ".entry", ".tmp");
      try {
        Files.writeString(tmp, o + "\n");
        try {
          Files.move(tmp, entry, StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
          Files.move(tmp, entry, StandardCopyOption.REPLACE_EXISTING);
        }
      } finally {
        Files.deleteIfExists(tmp);
      }
    } catch (IOException | RuntimeException e) {
      LOG.warn(
          "olmo-ppl: cannot keep the weight digest in {} ({}); it will be computed again next time."
              + " Set -D{} or {} to a writable directory.",
          entry.getParent(),
          e.toString(),
          CACHE_PROPERTY,
          CACHE_ENV);
    }
  }

  /** Entries kept before those of files that no longer exist are removed. */
  static final int PRUNE_ABOVE = 512;

  /**
   * Keeps the cache small where many checkpoints come and go (temporary ones, say): once it holds
   * more than {@link #PRUNE_ABOVE} entries, those whose file no longer exists are removed.
   */
  static void prune(Path dir) {
    try (var s = Files.list(dir)) {
      List<Path> entries = s.filter(p -> p.toString().endsWith(".json")).toList();
      if (entries.size() <= PRUNE_ABOVE) {
        return;
      }
      for (Path e : entries) {
        try {
          JsonObject o = JsonParser.parseString(Files.readString(e)).getAsJsonObject();
          if (!o.has("path") || !Files.exists(Path.of(o.get("path").getAsString()))) {
            Files.deleteIfExists(e);
          }
        } catch (IOException | RuntimeException x) {
          Files.deleteIfExists(e); // unreadable: it would never be used
        }
      }
    } catch (IOException | RuntimeException e) {
      LOG.debug("olmo-ppl: cannot prune the fingerprint cache {}: {}", dir, e.toString());
    }
  }

  static byte[] sha256(byte[] data) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(data);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static String sha256Hex(String s) {
    return HexFormat.of().formatHex(sha256(s.getBytes(StandardCharsets.UTF_8))).substring(0, 32);
  }
}
