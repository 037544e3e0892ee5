package dev.fhirsync.testserver;

import java.util.HashMap;
import java.util.Map;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.autoconfigure.quartz.QuartzAutoConfiguration;
import org.springframework.boot.autoconfigure.thymeleaf.ThymeleafAutoConfiguration;

/**
 * Entry point: a HAPI FHIR JPA R4 server on one port with its own H2 file database, used only by
 * the integration tests of fhir-sync. Component scanning stays inside this package; HAPI's own
 * configuration is pulled in explicitly by {@link FhirJpaConfig}.
 */
// Quartz and Thymeleaf are on the classpath through HAPI but must not be auto-configured:
// HAPI drives its own scheduler, and this server renders no pages.
@SpringBootApplication(exclude = {QuartzAutoConfiguration.class, ThymeleafAutoConfiguration.class})
public class TestServerApplication {

	public static void main(String[] args) {
		LaunchOptions options = LaunchOptions.parse(args, System.getenv());
		SpringApplication app = new SpringApplication(TestServerApplication.class);
		app.setDefaultProperties(springProperties(options));
		app.run();
	}

	/** Per-server Spring properties; the fixed ones live in application.properties. */
	static Map<String, Object> springProperties(LaunchOptions options) {
		Map<String, Object> props = new HashMap<>();
		props.put("server.port", options.port());
		// File database so a server can be restarted with its data (FHIR_KEEP_DATA); the Node
		// launcher deletes the directory for a clean start by default.
		props.put("spring.datasource.url", "jdbc:h2:file:" + options.dataDir().resolve("h2").resolve("fhir"));
		props.put("spring.application.name", "fhir-test-" + options.name());
		props.put("fhirsync.ref-integrity-on-delete", options.refIntegrityOnDelete());
		props.put("fhirsync.no-history", options.noHistory());
		return props;
	}
}
