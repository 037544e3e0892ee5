package dev.fhirsync.testserver;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.IValidationSupport;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.dao.IFhirSystemDao;
import ca.uhn.fhir.jpa.provider.IJpaSystemProvider;
import ca.uhn.fhir.jpa.provider.JpaCapabilityStatementProvider;
import ca.uhn.fhir.jpa.search.DatabaseBackedPagingProvider;
import ca.uhn.fhir.narrative.INarrativeGenerator;
import ca.uhn.fhir.rest.api.EncodingEnum;
import ca.uhn.fhir.rest.server.RestfulServer;
import ca.uhn.fhir.rest.server.interceptor.LoggingInterceptor;
import ca.uhn.fhir.rest.server.provider.ResourceProviderFactory;
import ca.uhn.fhir.rest.server.util.ISearchParamRegistry;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.web.servlet.ServletRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/** HTTP side: one HAPI {@link RestfulServer} serving the JPA providers under {@code /fhir/*}. */
@Configuration
public class FhirServletConfig {

	/** Page sizes for searches and _history; large enough for bulk sync pages. */
	private static final int DEFAULT_PAGE_SIZE = 20;

	private static final int MAX_PAGE_SIZE = 1000;

	@Bean
	public RestfulServer restfulServer(
			FhirContext fhirContext,
			IFhirSystemDao<?, ?> systemDao,
			IJpaSystemProvider systemProvider,
			ResourceProviderFactory resourceProviders,
			JpaStorageSettings storageSettings,
			ISearchParamRegistry searchParamRegistry,
			IValidationSupport validationSupport,
			DatabaseBackedPagingProvider pagingProvider,
			@Value("${fhirsync.no-history:false}") boolean noHistory) {
		// No generated narratives: the tests compare resources and need no HTML.
		fhirContext.setNarrativeGenerator((INarrativeGenerator) null);
		RestfulServer server = new RestfulServer(fhirContext);
		server.registerProviders(resourceProviders.createProviders());
		// Transactions/batches, system-level _history and system operations.
		server.registerProvider(systemProvider);
		server.setServerConformanceProvider(new JpaCapabilityStatementProvider(
				server, systemDao, storageSettings, searchParamRegistry, validationSupport));
		// Without a paging provider, next links (_getpages) are not served.
		pagingProvider.setDefaultPageSize(DEFAULT_PAGE_SIZE);
		pagingProvider.setMaximumPageSize(MAX_PAGE_SIZE);
		server.setPagingProvider(pagingProvider);
		server.setDefaultResponseEncoding(EncodingEnum.JSON);
		server.registerInterceptor(requestLog());
		if (noHistory) {
			server.registerInterceptor(new NoHistoryInterceptor());
		}
		return server;
	}

	@Bean
	public ServletRegistrationBean<RestfulServer> fhirServlet(RestfulServer restfulServer) {
		ServletRegistrationBean<RestfulServer> registration = new ServletRegistrationBean<>(restfulServer, "/fhir/*");
		registration.setLoadOnStartup(1);
		return registration;
	}

	/** One line per request (verb, operation, resource, time) to help debug failing tests. */
	private static LoggingInterceptor requestLog() {
		LoggingInterceptor log = new LoggingInterceptor();
		log.setLoggerName("fhir.request");
		log.setMessageFormat(
				"${requestVerb} ${operationType} ${idOrResourceName} ${processingTimeMillis}ms");
		log.setErrorMessageFormat("ERROR ${requestVerb} ${operationType} ${idOrResourceName}: ${exceptionMessage}");
		log.setLogExceptions(true);
		return log;
	}
}
