// SPDX-License-Identifier: Apache-2.0
/*
 * Loads libsegfit.so exactly once per class loader and remembers why it failed if it did.
 *
 * Invariants: the load happens in the static initializer of Holder, so it runs once, under the
 * JVM's class-initialization lock, whatever the number of threads or callers; a failure is
 * kept and reported again (as a fresh UnsatisfiedLinkError with the original as cause) on every
 * use, so a caller can fall back instead of meeting NoClassDefFoundError later. System.load is
 * called from this class so that the JDK 22+ native-access warning and --enable-native-access
 * name this module (or ALL-UNNAMED), never a helper library. The layout is native-lib-loader's:
 * natives/linux_64/libsegfit.so and natives/linux_arm64/libsegfit.so on the class path. The
 * resource is read with our own Class.getResourceAsStream, which also works when io.segfit is a
 * named module (where a helper library in another module could not see the resource).
 */
package io.segfit.internal;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.Locale;
import java.util.Properties;

public final class NativeLibrary {
  private NativeLibrary() {}

  /** Base name of the library, as in System.mapLibraryName. */
  public static final String NAME = "segfit";

  private static final class Holder {
    static final Loaded RESULT = load();
  }

  /** Outcome of the one load: where from, and the error if any. */
  private record Loaded(String source, Throwable failure) {}

  /** Throws an UnsatisfiedLinkError explaining why the library is unavailable, if it is. */
  public static void ensureLoaded() {
    Loaded loaded = Holder.RESULT;
    if (loaded.failure != null) {
      UnsatisfiedLinkError error = new UnsatisfiedLinkError(loaded.failure.getMessage());
      error.initCause(loaded.failure);
      throw error;
    }
  }

  /** The reason the library could not be loaded, or null if it is loaded. */
  public static Throwable failure() {
    return Holder.RESULT.failure;
  }

  /** Where the loaded library came from (a path, or a class path resource). */
  public static String source() {
    return Holder.RESULT.source;
  }

  /**
   * The platform directory of native-lib-loader's layout ("linux_64", "linux_arm64"), or null
   * if segfit has no library for this os.name / os.arch.
   */
  public static String platformDirectory(String osName, String osArch) {
    if (!osName.toLowerCase(Locale.ROOT).startsWith("linux")) return null;
    switch (osArch.toLowerCase(Locale.ROOT)) {
      case "amd64":
      case "x86_64":
        return "linux_64";
      case "aarch64":
      case "arm64":
        return "linux_arm64";
      default:
        return null;
    }
  }

  /** The class path resource holding the library for this JVM's platform. */
  public static String resourceName(String osName, String osArch) {
    String dir = platformDirectory(osName, osArch);
    if (dir == null) {
      // Name what native-lib-loader's layout would call it, so the message says what is missing.
      String os = osName.toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9]+", "");
      dir = os + "_" + osArch.toLowerCase(Locale.ROOT);
    }
    return "natives/" + dir + "/" + System.mapLibraryName(NAME);
  }

  /**
   * The properties written next to the library by the native build (commit, processor,
   * compiler, build type), or empty properties when the library was loaded from a path.
   */
  public static Properties buildProperties() {
    Properties properties = new Properties();
    String os = System.getProperty("os.name", "");
    String arch = System.getProperty("os.arch", "");
    String dir = platformDirectory(os, arch);
    if (dir == null || Option.LIBRARY_PATH.isSet()) return properties;
    try (InputStream in = NativeLibrary.class.getResourceAsStream(
        "/natives/" + dir + "/build.properties")) {
      if (in != null) properties.load(in);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return properties;
  }

  private static Loaded load() {
    String override = Option.LIBRARY_PATH.value();
    if (!override.isEmpty()) {
      String path = Paths.get(override).toAbsolutePath().toString();
      String source = path + " (from " + Option.LIBRARY_PATH.key() + ")";
      try {
        System.load(path);
        return new Loaded(source, null);
      } catch (Throwable t) {
        return new Loaded(source, wrap("cannot load " + source, t));
      }
    }
    String os = System.getProperty("os.name", "?");
    String arch = System.getProperty("os.arch", "?");
    String resource = resourceName(os, arch);
    String where = "os.name=" + os + ", os.arch=" + arch + ", resource " + resource;
    if (platformDirectory(os, arch) == null) {
      return new Loaded(null, new UnsatisfiedLinkError("segfit has no native library for this "
          + "platform (" + where + "); supported: Linux x86_64 and aarch64"));
    }
    Path extracted = null;
    try (InputStream in = NativeLibrary.class.getResourceAsStream("/" + resource)) {
      if (in == null) {
        return new Loaded(null, new UnsatisfiedLinkError("segfit's native library is missing ("
            + where + " is not on the class path; set " + Option.LIBRARY_PATH.key()
            + " to load a libsegfit.so from elsewhere)"));
      }
      extracted = extract(in);
      System.load(extracted.toString());
      return new Loaded(resource, null);
    } catch (Throwable t) {
      String into = extracted == null ? "" : " extracted to " + extracted;
      return new Loaded(resource, wrap("cannot load segfit's native library (" + where + into
          + "; if the directory is mounted noexec, set " + Option.TMPDIR.key() + ")", t));
    } finally {
      if (extracted != null) {
        // Linux keeps the mapping of a deleted file: nothing is left behind, even on kill -9.
        try {
          Files.deleteIfExists(extracted);
        } catch (IOException ignored) {
          extracted.toFile().deleteOnExit();
        }
      }
    }
  }

  private static Path extract(InputStream in) throws IOException {
    String dir = Option.TMPDIR.value();
    Path directory = Paths.get(dir.isEmpty() ? System.getProperty("java.io.tmpdir") : dir);
    Files.createDirectories(directory);
    Path file = Files.createTempFile(directory, "libsegfit-", ".so");
    try {
      Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
    } catch (IOException e) {
      Files.deleteIfExists(file);
      throw e;
    }
    return file;
  }

  private static UnsatisfiedLinkError wrap(String context, Throwable cause) {
    UnsatisfiedLinkError error = new UnsatisfiedLinkError(context + ": " + cause);
    error.initCause(cause);
    return error;
  }
}
