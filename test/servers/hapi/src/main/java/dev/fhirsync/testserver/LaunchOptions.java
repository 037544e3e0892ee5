package dev.fhirsync.testserver;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * Launch options of one test server, read from {@code --key=value} arguments with environment
 * fallbacks, so the Node launcher can pass either.
 *
 * @param port           HTTP port ({@code --port}, env {@code FHIR_PORT}; default 8080)
 * @param dataDir        directory for the H2 database files ({@code --data-dir}, env {@code FHIR_DATA_DIR})
 * @param name           label used in log lines ({@code --name}, env {@code FHIR_SERVER_NAME})
 * @param refIntegrityOnDelete whether a DELETE of a still-referenced resource is refused
 *                       ({@code --ref-integrity-on-delete}, env {@code FHIR_REF_INTEGRITY_ON_DELETE}; default false)
 * @param noHistory      whether {@code _history} is refused and hidden from the CapabilityStatement
 *                       ({@code --no-history}, env {@code FHIR_NO_HISTORY}; default false)
 */
public record LaunchOptions(int port, Path dataDir, String name, boolean refIntegrityOnDelete, boolean noHistory) {

	/** Parses arguments first, then the environment; fails with a message naming the bad option. */
	public static LaunchOptions parse(String[] args, Map<String, String> env) {
		Map<String, String> given = new HashMap<>();
		for (String arg : args) {
			if (!arg.startsWith("--") || !arg.contains("=")) {
				throw new IllegalArgumentException("Unrecognised argument (expected --key=value): " + arg);
			}
			int eq = arg.indexOf('=');
			given.put(arg.substring(2, eq), arg.substring(eq + 1));
		}
		String port = pick(given, "port", env, "FHIR_PORT", "8080");
		String dataDir = pick(given, "data-dir", env, "FHIR_DATA_DIR", null);
		String name = pick(given, "name", env, "FHIR_SERVER_NAME", "fhir");
		String integrity = pick(given, "ref-integrity-on-delete", env, "FHIR_REF_INTEGRITY_ON_DELETE", "false");
		String noHistory = pick(given, "no-history", env, "FHIR_NO_HISTORY", "false");
		if (dataDir == null || dataDir.isBlank()) {
			throw new IllegalArgumentException("Missing --data-dir (or FHIR_DATA_DIR): directory for the H2 database");
		}
		return new LaunchOptions(parsePort(port), Path.of(dataDir).toAbsolutePath().normalize(), name,
				parseBoolean("ref-integrity-on-delete", integrity), parseBoolean("no-history", noHistory));
	}

	private static String pick(Map<String, String> given, String key, Map<String, String> env, String envKey,
			String fallback) {
		if (given.containsKey(key)) {
			return given.get(key);
		}
		String fromEnv = env.get(envKey);
		return fromEnv != null && !fromEnv.isBlank() ? fromEnv : fallback;
	}

	private static int parsePort(String value) {
		try {
			int port = Integer.parseInt(value);
			if (port > 0 && port < 65536) {
				return port;
			}
		} catch (NumberFormatException ignored) {
			// reported below
		}
		throw new IllegalArgumentException("Invalid port (expected 1-65535): " + value);
	}

	private static boolean parseBoolean(String key, String value) {
		if (value.equals("true") || value.equals("false")) {
			return Boolean.parseBoolean(value);
		}
		throw new IllegalArgumentException("Invalid --" + key + " (expected true or false): " + value);
	}
}
