package io.olmoppl.job.cli;

import java.io.IOException;
import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;

/**
 * Command-line options of one command. A value is looked up on the command line ({@code --name
 * value} or {@code --name=value}), then in the {@code --properties} file, then in the Spark
 * configuration as {@code spark.olmoppl.<name>} (spark-submit's {@code --conf} reaches the driver
 * as system properties).
 */
public final class Args {
  static final String CONF_PREFIX = "spark.olmoppl.";

  private final String command;
  private final Map<String, String> values = new LinkedHashMap<>();
  private final Set<String> flags;
  private final Properties file = new Properties();

  private Args(String command, Set<String> flags) {
    this.command = command;
    this.flags = flags;
  }

  /**
   * @param options the value options this command accepts
   * @param flags the boolean options this command accepts
   * @throws UsageException for an unknown option or a missing value
   */
  public static Args parse(
      String command, String[] argv, int from, Set<String> options, Set<String> flags) {
    Args a = new Args(command, flags);
    List<String> known = new ArrayList<>(options);
    known.addAll(flags);
    for (int i = from; i < argv.length; i++) {
      String arg = argv[i];
      if (!arg.startsWith("--")) {
        throw new UsageException(
            "unexpected argument '" + arg + "' for '" + command + "'; options start with --");
      }
      String name = arg.substring(2);
      String value = null;
      int eq = name.indexOf('=');
      if (eq >= 0) {
        value = name.substring(eq + 1);
        name = name.substring(0, eq);
      }
      if (flags.contains(name)) {
        a.values.put(name, value == null ? "true" : value);
        continue;
      }
      if (!options.contains(name)) {
        throw new UsageException(
            "unknown option --"
                + name
                + " for '"
                + command
                + "'. Known options: --"
                + String.join(", --", known));
      }
      if (value == null) {
        if (i + 1 >= argv.length) {
          throw new UsageException("--" + name + " needs a value");
        }
        value = argv[++i];
      }
      a.values.put(name, value);
    }
    String props = a.values.get("properties");
    if (props != null) {
      try (Reader r = Files.newBufferedReader(Path.of(props))) {
        a.file.load(r);
      } catch (IOException e) {
        throw new UsageException("cannot read --properties " + props + ": " + e.getMessage());
      }
      for (String k : a.file.stringPropertyNames()) {
        String n = k.startsWith(CONF_PREFIX) ? k.substring(CONF_PREFIX.length()) : k;
        if (!options.contains(n) && !flags.contains(n)) {
          throw new UsageException(
              "unknown key '" + k + "' in " + props + ". Known keys: " + String.join(", ", known));
        }
      }
    }
    return a;
  }

  public String get(String name) {
    String v = values.get(name);
    if (v == null) {
      v = file.getProperty(name, file.getProperty(CONF_PREFIX + name));
    }
    if (v == null) {
      v = System.getProperty(CONF_PREFIX + name);
    }
    return v;
  }

  public String get(String name, String def) {
    String v = get(name);
    return v == null ? def : v;
  }

  public String require(String name) {
    String v = get(name);
    if (v == null || v.isEmpty()) {
      throw new UsageException("'" + command + "' needs --" + name);
    }
    return v;
  }

  public boolean flag(String name) {
    String v = get(name);
    if (v == null) {
      return false;
    }
    if (v.equalsIgnoreCase("true") || v.isEmpty()) {
      return true;
    }
    if (v.equalsIgnoreCase("false")) {
      return false;
    }
    throw new UsageException(
        "--" + name + " is a flag: give it alone, or as true/false, not '" + v + "'");
  }

  public Integer integer(String name) {
    String v = get(name);
    if (v == null) {
      return null;
    }
    try {
      return Integer.parseInt(v.trim());
    } catch (NumberFormatException e) {
      if (v.trim().matches("[+-]?[0-9]+")) {
        throw new UsageException(
            "--"
                + name
                + " "
                + v.trim()
                + " is out of range: it must be between "
                + Integer.MIN_VALUE
                + " and "
                + Integer.MAX_VALUE);
      }
      throw new UsageException("--" + name + " must be a whole number, not '" + v + "'");
    }
  }

  public int integer(String name, int def) {
    Integer v = integer(name);
    return v == null ? def : v;
  }
}
