package io.olmoppl.job.score;

import io.olmoppl.job.cli.JobException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Paths;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * What a path points to, and the one rule about which paths of a run may share a place: a run never
 * writes ({@code --output}, {@code --rejected}) where it reads ({@code --input}, {@code
 * --previous}), nor one output inside the other.
 *
 * <p>Paths are compared by what they point to, not as text: a local path by its real path (every
 * symbolic link of its existing part resolved, {@code ..} as Hadoop reads it), lower-cased where
 * the local file system is case-insensitive; any other Hadoop path by its qualified URI with its
 * existing part resolved by the file system ({@link FileSystem#resolvePath}: HDFS links, viewfs
 * mounts). A local input directory is also searched for symbolic links that lead elsewhere: an
 * input file linked from the output folder counts as input there.
 */
final class Places {
  /** At most this many entries of a local input directory are searched for links. */
  static final int LINK_SEARCH_LIMIT = 100_000;

  private Places() {}

  /** One named path of a run and where it (and any link inside it) points. */
  record Place(String flag, String path, String key, List<String> linkedKeys) {
    /**
     * @return whether the two are one place or one is inside the other
     */
    boolean overlaps(Place o) {
      if (nested(key, o.key)) {
        return true;
      }
      for (String l : linkedKeys) {
        if (nested(l, o.key)) {
          return true;
        }
      }
      for (String l : o.linkedKeys) {
        if (nested(key, l)) {
          return true;
        }
      }
      return false;
    }

    /**
     * @return whether this place is the other one or inside it
     */
    boolean inside(Place o) {
      return key.equals(o.key) || key.startsWith(slash(o.key));
    }
  }

  /**
   * Refuses, before any work, a run that writes where it reads or one output inside the other.
   *
   * @param reads the places the run reads (input, previous output)
   * @param writes the places the run writes (output, rejected rows)
   */
  static void refuseOverlaps(List<Place> reads, List<Place> writes) {
    for (Place w : writes) {
      for (Place r : reads) {
        if (w.overlaps(r)) {
          throw new JobException(
              w.flag()
                  + " "
                  + w.path()
                  + " overlaps "
                  + r.flag()
                  + " "
                  + r.path()
                  + ": they are the same place, or one is inside the other (compared by what they"
                  + " point to: "
                  + w.key()
                  + " and "
                  + r.key()
                  + (r.linkedKeys().isEmpty() ? "" : ", with the links in " + r.flag())
                  + "). A run never writes where it reads: write the results to a new path.");
        }
      }
    }
    for (int i = 0; i < writes.size(); i++) {
      for (int j = 0; j < writes.size(); j++) {
        Place a = writes.get(i);
        Place b = writes.get(j);
        if (i != j && a.inside(b)) {
          throw new JobException(
              a.flag()
                  + " "
                  + a.path()
                  + (a.key().equals(b.key()) ? " is the same place as " : " is inside ")
                  + b.flag()
                  + " "
                  + b.path()
                  + " ("
                  + a.key()
                  + "). Each output is written whole and replaced whole: give "
                  + a.flag()
                  + " a path of its own beside "
                  + b.flag()
                  + ".");
        }
      }
    }
  }

  /**
   * @param searchLinks whether to look for symbolic links inside a local directory (for inputs)
   * @return where {@code path} points
   */
  static Place of(Configuration conf, String flag, String path, boolean searchLinks)
      throws IOException {
    Path p = new Path(path);
    FileSystem fs = p.getFileSystem(conf);
    Path q = fs.makeQualified(p);
    if (!"file".equals(q.toUri().getScheme())) {
      return new Place(flag, path, hadoopKey(fs, q), List.of());
    }
    java.nio.file.Path local = Paths.get(q.toUri());
    List<String> links = searchLinks ? linkedKeys(local) : List.of();
    return new Place(flag, path, localKey(local), links);
  }

  /** The qualified URI, its longest existing prefix resolved by the file system. */
  private static String hadoopKey(FileSystem fs, Path q) throws IOException {
    Deque<String> rest = new ArrayDeque<>();
    Path e = q;
    while (e.getParent() != null && !fs.exists(e)) {
      rest.push(e.getName());
      e = e.getParent();
    }
    Path r = fs.exists(e) ? fs.makeQualified(fs.resolvePath(e)) : e;
    for (String n : rest) {
      r = new Path(r, n);
    }
    return trim(r.toUri().toString());
  }

  /**
   * The real path of the longest existing prefix, the rest appended; lower-cased where the file
   * system ignores case.
   */
  static String localKey(java.nio.file.Path path) throws IOException {
    java.nio.file.Path abs = path.toAbsolutePath().normalize();
    Deque<String> rest = new ArrayDeque<>();
    java.nio.file.Path e = abs;
    while (e.getParent() != null && !Files.exists(e)) {
      rest.push(e.getFileName().toString());
      e = e.getParent();
    }
    java.nio.file.Path real = e.toRealPath();
    boolean ignoresCase = ignoresCase(real);
    for (String n : rest) {
      real = real.resolve(n);
    }
    String key = trim(real.toUri().getPath());
    return ignoresCase ? key.toLowerCase(Locale.ROOT) : key;
  }

  /**
   * @return whether the file system of an existing real path ignores case: a name of it with its
   *     case flipped names the same file
   */
  static boolean ignoresCase(java.nio.file.Path real) throws IOException {
    for (java.nio.file.Path d = real; d != null && d.getFileName() != null; d = d.getParent()) {
      String n = d.getFileName().toString();
      String flipped = flip(n);
      if (!flipped.equals(n)) {
        java.nio.file.Path other = d.resolveSibling(flipped);
        return Files.exists(other, LinkOption.NOFOLLOW_LINKS) && Files.isSameFile(d, other);
      }
    }
    return false; // no name with a letter to probe: assume the POSIX default
  }

  private static String flip(String s) {
    StringBuilder b = new StringBuilder(s.length());
    for (char c : s.toCharArray()) {
      b.append(Character.isUpperCase(c) ? Character.toLowerCase(c) : Character.toUpperCase(c));
    }
    return b.toString();
  }

  /**
   * @return the real places of the symbolic links found inside a local directory (empty for a file)
   */
  private static List<String> linkedKeys(java.nio.file.Path dir) throws IOException {
    List<String> keys = new ArrayList<>();
    if (!Files.isDirectory(dir)) {
      return keys;
    }
    try (Stream<java.nio.file.Path> s = Files.walk(dir)) {
      s.limit(LINK_SEARCH_LIMIT)
          .filter(Files::isSymbolicLink)
          .forEach(
              l -> {
                try {
                  // resolved by hand: a dangling link still says where it leads
                  keys.add(localKey(l.getParent().resolve(Files.readSymbolicLink(l))));
                } catch (IOException e) {
                  throw new UncheckedIOException(e);
                }
              });
    } catch (UncheckedIOException e) {
      throw e.getCause();
    }
    return keys;
  }

  private static boolean nested(String a, String b) {
    return a.equals(b) || a.startsWith(slash(b)) || b.startsWith(slash(a));
  }

  private static String slash(String k) {
    return k.endsWith("/") ? k : k + "/";
  }

  private static String trim(String k) {
    return k.length() > 1 && k.endsWith("/") && !k.endsWith(":/") && !k.endsWith("//")
        ? k.substring(0, k.length() - 1)
        : k;
  }
}
