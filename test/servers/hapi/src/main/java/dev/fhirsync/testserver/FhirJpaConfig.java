package dev.fhirsync.testserver;

import ca.uhn.fhir.batch2.jobs.config.Batch2JobsConfig;
import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.api.config.ThreadPoolFactoryConfig;
import ca.uhn.fhir.jpa.api.model.HistoryCountModeEnum;
import ca.uhn.fhir.jpa.batch2.JpaBatch2Config;
import ca.uhn.fhir.jpa.config.HapiJpaConfig;
import ca.uhn.fhir.jpa.config.HibernatePropertiesProvider;
import ca.uhn.fhir.jpa.config.r4.JpaR4Config;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.config.SubscriptionSettings;
import ca.uhn.fhir.jpa.model.dialect.HapiFhirH2Dialect;
import ca.uhn.fhir.jpa.subscription.channel.config.SubscriptionChannelConfig;
import ca.uhn.fhir.jpa.subscription.match.config.SubscriptionProcessorConfig;
import ca.uhn.fhir.jpa.subscription.match.deliver.email.IEmailSender;
import ca.uhn.fhir.jpa.subscription.submit.config.SubscriptionSubmitterConfig;
import org.hl7.fhir.dstu2.model.Subscription.SubscriptionChannelType;
import jakarta.persistence.EntityManagerFactory;
import java.util.Map;
import javax.sql.DataSource;
import org.hibernate.dialect.Dialect;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.boot.autoconfigure.orm.jpa.JpaProperties;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Import;
import org.springframework.context.annotation.Primary;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;
import org.springframework.transaction.annotation.EnableTransactionManagement;

/**
 * Persistence side of the server: HAPI's R4 JPA configuration plus the beans HAPI expects the
 * application to supply (storage settings, entity manager factory, transaction manager).
 */
@Configuration
@EnableTransactionManagement
@Import({
	JpaR4Config.class,
	HapiJpaConfig.class,
	ThreadPoolFactoryConfig.class,
	JpaBatch2Config.class,
	Batch2JobsConfig.class,
	// Supplies the in-memory message broker that HAPI's batch2 job coordinator (and the
	// subscription pipeline) needs.
	SubscriptionChannelConfig.class,
	// REST-hook subscriptions: matching on write and delivery to the endpoint (push wake-up).
	SubscriptionSubmitterConfig.class,
	SubscriptionProcessorConfig.class
})
public class FhirJpaConfig {

	/**
	 * Storage behaviour the sync tests depend on. Each setting differs from HAPI's default or
	 * pins a default we rely on; the reasons are in test/servers/README.md.
	 */
	@Bean
	public JpaStorageSettings storageSettings(
			@Value("${fhirsync.ref-integrity-on-delete:false}") boolean refIntegrityOnDelete) {
		JpaStorageSettings settings = new JpaStorageSettings();
		// Sync writes resources under ids chosen elsewhere (pseudonyms, UUIDs, plain numbers).
		settings.setResourceClientIdStrategy(JpaStorageSettings.ClientIdStrategyEnum.ANY);
		// With ANY, server-assigned ids must not be able to collide with client numeric ids.
		settings.setResourceServerIdStrategy(JpaStorageSettings.IdStrategyEnum.UUID);
		// Reads must see the latest writes: never answer a search from a cached result set.
		settings.setReuseCachedSearchResultsForMillis(null);
		// The default count mode can hide versions written in the last minute from _history.
		settings.setHistoryCountMode(HistoryCountModeEnum.COUNT_ACCURATE);
		settings.setDeleteEnabled(true);
		settings.setEnforceReferentialIntegrityOnWrite(true);
		// Deletes arrive per resource type; a Patient may be deleted before the Observations that
		// pointed at it, so refusing such deletes would wedge the sync (see README).
		settings.setEnforceReferentialIntegrityOnDelete(refIntegrityOnDelete);
		settings.setAllowExternalReferences(true);
		// Lets tests clean up with conditional deletes and $expunge.
		settings.setAllowMultipleDelete(true);
		settings.setExpungeEnabled(true);
		return settings;
	}

	@Bean
	public PartitionSettings partitionSettings() {
		return new PartitionSettings();
	}

	@Bean
	public SubscriptionSettings subscriptionSettings() {
		SubscriptionSettings settings = new SubscriptionSettings();
		// The sync service subscribes per type with rest-hook and no payload (a wake-up only).
		settings.addSupportedSubscriptionType(SubscriptionChannelType.RESTHOOK);
		// HAPI hands changes to subscription matching from a periodic job (every 5 s by default,
		// hapi-fhir#6394), which would dominate push latency; a Subscription itself is queued at once.
		settings.setSubscriptionIntervalInMs(250);
		settings.setSubscriptionChangeQueuedImmediately(true);
		return settings;
	}

	/** Only rest-hook is enabled; the delivery pipeline still asks for a mail sender. */
	@Bean
	public IEmailSender emailSender() {
		return details -> {
			throw new UnsupportedOperationException("email subscriptions are not enabled on this test server");
		};
	}

	@Bean
	@Primary
	public LocalContainerEntityManagerFactoryBean entityManagerFactory(
			ConfigurableListableBeanFactory beanFactory,
			FhirContext fhirContext,
			JpaStorageSettings storageSettings,
			JpaProperties jpaProperties,
			DataSource dataSource) {
		LocalContainerEntityManagerFactoryBean factory =
				HapiEntityManagerFactoryUtil.newEntityManagerFactory(beanFactory, fhirContext, storageSettings);
		Map<String, String> props = jpaProperties.getProperties();
		// Fresh database per run: let Hibernate create the schema instead of HAPI's migrator.
		props.putIfAbsent("hibernate.hbm2ddl.auto", "update");
		props.putIfAbsent("hibernate.search.enabled", "false");
		props.putIfAbsent("hibernate.dialect", HapiFhirH2Dialect.class.getName());
		props.putIfAbsent("hibernate.jdbc.batch_size", "20");
		props.putIfAbsent("hibernate.cache.use_query_cache", "false");
		props.putIfAbsent("hibernate.cache.use_second_level_cache", "false");
		props.putIfAbsent("hibernate.format_sql", "false");
		props.putIfAbsent("hibernate.show_sql", "false");
		props.putIfAbsent(
				"hibernate.physical_naming_strategy",
				"org.hibernate.boot.model.naming.CamelCaseToUnderscoresNamingStrategy");
		factory.setPersistenceUnitName("HAPI_PU");
		factory.setJpaPropertyMap(props);
		factory.setDataSource(dataSource);
		return factory;
	}

	@Bean
	@Primary
	public JpaTransactionManager transactionManager(EntityManagerFactory entityManagerFactory) {
		return new JpaTransactionManager(entityManagerFactory);
	}

	/** Tells HAPI which SQL dialect is in use without it having to probe the connection. */
	@Bean
	@Primary
	public HibernatePropertiesProvider h2HibernatePropertiesProvider() {
		return new HibernatePropertiesProvider() {
			private final Dialect dialect = new HapiFhirH2Dialect();

			@Override
			public Dialect getDialect() {
				return dialect;
			}
		};
	}
}
