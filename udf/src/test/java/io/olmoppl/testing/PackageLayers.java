package io.olmoppl.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Checks a module's main sources against its package layers: a package may refer to its own classes
 * and to packages of lower layers only, so the packages form no circle and a reader can read them
 * bottom up. A reference is an import or a qualified name in code (comments, where the docs may
 * point anywhere, are left out); a package's subpackages belong to it.
 */
public final class PackageLayers {
  /**
   * The library's packages (under {@code io.olmoppl}), lowest layer first, as the README's Layout
   * lists them.
   */
  public static final List<Set<String>> LIBRARY =
      List.of(
          Set.of("runtime", "checkpoint"),
          Set.of("tokenizer", "model"),
          Set.of("scoring"),
          Set.of("batching"),
          Set.of("spark"));

  private static final Pattern BLOCK_COMMENT = Pattern.compile("/\\*.*?\\*/", Pattern.DOTALL);
  private static final Pattern LINE_COMMENT = Pattern.compile("//[^\\n]*");

  private final String base;
  private final List<Set<String>> layers;
  private final Set<String> outside;

  /**
   * @param base the module's base package, e.g. {@code io.olmoppl.job}
   * @param layers the packages directly under {@code base}, lowest layer first; the empty name is
   *     {@code base} itself
   * @param outside the other project packages (full names) the module may refer to from any layer
   */
  public PackageLayers(String base, List<Set<String>> layers, Set<String> outside) {
    this.base = base;
    this.layers = layers;
    this.outside = outside;
  }

  /**
   * @return the library's packages by their full names, which the job may refer to from any layer
   */
  public static Set<String> libraryPackages() {
    Set<String> all = new TreeSet<>();
    LIBRARY.forEach(layer -> layer.forEach(p -> all.add("io.olmoppl." + p)));
    return all;
  }

  /**
   * @param sources the module's {@code src/main/java}
   * @return every reference that breaks the layers, as "file: package -> referred", and every
   *     package missing from the layers
   */
  public List<String> violations(Path sources) {
    Path root = sources.resolve(base.replace('.', '/'));
    Pattern ref = Pattern.compile("\\bio\\.olmoppl(?:\\.[a-z][a-z0-9]*)+");
    List<String> out = new ArrayList<>();
    try (Stream<Path> files = Files.walk(root)) {
      for (Path f : files.filter(p -> p.toString().endsWith(".java")).sorted().toList()) {
        String pkg = packageOf(root.relativize(f.getParent()).toString().replace('/', '.'));
        int layer = layerOf(pkg);
        if (layer < 0) {
          out.add(f + ": package '" + pkg + "' is in no layer");
          continue;
        }
        String code =
            LINE_COMMENT
                .matcher(BLOCK_COMMENT.matcher(Files.readString(f)).replaceAll(""))
                .replaceAll("");
        Set<String> seen = new TreeSet<>();
        Matcher m = ref.matcher(code);
        while (m.find()) {
          seen.add(m.group());
        }
        for (String name : seen) {
          String problem = check(pkg, layer, name);
          if (problem != null) {
            out.add(root.relativize(f) + ": " + problem);
          }
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out;
  }

  private String check(String pkg, int layer, String name) {
    if (name.equals(base) || name.startsWith(base + ".")) {
      String rest = name.substring(base.length());
      String target = rest.isEmpty() ? "" : packageOf(rest.substring(1));
      int targetLayer = layerOf(target);
      if (target.equals(pkg) || (targetLayer >= 0 && targetLayer < layer)) {
        return null;
      }
      return "'" + pkg + "' refers to '" + target + "' (" + name + "), which is not below it";
    }
    for (String o : outside) {
      if (name.equals(o) || name.startsWith(o + ".")) {
        return null;
      }
    }
    return "'" + pkg + "' refers to " + name + ", outside what this module may use";
  }

  /** The first segment of a dotted name below the base: its package in the layers. */
  private static String packageOf(String below) {
    int dot = below.indexOf('.');
    return dot < 0 ? below : below.substring(0, dot);
  }

  private int layerOf(String pkg) {
    for (int i = 0; i < layers.size(); i++) {
      if (layers.get(i).contains(pkg)) {
        return i;
      }
    }
    return -1;
  }
}
