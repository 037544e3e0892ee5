package dev.fhirsync.testserver;

import ca.uhn.fhir.interceptor.api.Hook;
import ca.uhn.fhir.interceptor.api.Interceptor;
import ca.uhn.fhir.interceptor.api.Pointcut;
import ca.uhn.fhir.rest.api.RestOperationTypeEnum;
import ca.uhn.fhir.rest.api.server.RequestDetails;
import ca.uhn.fhir.rest.server.exceptions.MethodNotAllowedException;
import org.hl7.fhir.instance.model.api.IBaseConformance;
import org.hl7.fhir.r4.model.CapabilityStatement;

/**
 * Makes the server behave like FHIR servers that have no {@code _history} (some managed
 * services, servers with history switched off): every history read, version reads
 * ({@code _history/<vid>}) included, answers 405 and the
 * CapabilityStatement lists no history interactions. The sync service must then fall back to
 * {@code _lastUpdated} search; a test server with this on lets that path run live.
 */
@Interceptor
public class NoHistoryInterceptor {

	@Hook(Pointcut.SERVER_INCOMING_REQUEST_POST_PROCESSED)
	public void refuseHistory(RequestDetails request) {
		RestOperationTypeEnum op = request.getRestOperationType();
		if (op == RestOperationTypeEnum.HISTORY_SYSTEM || op == RestOperationTypeEnum.HISTORY_TYPE
				|| op == RestOperationTypeEnum.HISTORY_INSTANCE || op == RestOperationTypeEnum.VREAD) {
			throw new MethodNotAllowedException("History is not supported by this server");
		}
	}

	@Hook(Pointcut.SERVER_CAPABILITY_STATEMENT_GENERATED)
	public void hideHistory(IBaseConformance conformance) {
		if (!(conformance instanceof CapabilityStatement cs)) {
			return;
		}
		for (CapabilityStatement.CapabilityStatementRestComponent rest : cs.getRest()) {
			rest.getInteraction().removeIf(i -> i.getCode() == CapabilityStatement.SystemRestfulInteraction.HISTORYSYSTEM);
			for (CapabilityStatement.CapabilityStatementRestResourceComponent res : rest.getResource()) {
				res.getInteraction().removeIf(i -> i.getCode() == CapabilityStatement.TypeRestfulInteraction.HISTORYTYPE
						|| i.getCode() == CapabilityStatement.TypeRestfulInteraction.HISTORYINSTANCE
						|| i.getCode() == CapabilityStatement.TypeRestfulInteraction.VREAD);
			}
		}
	}
}
