// Test support: creates ACL bindings on a test broker through Kafka's own Admin client (aiokafka
// has no ACL API), so tests can check the ACLs shared/topics.py derives against a real authorizer.
// Run with the broker's jars:  java -cp 'libs/*' CreateAcls.java <bootstrap> <binding>...
// Each binding: principal|resourceType|resourceName|patternType|operation (allow, any host).
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public class CreateAcls {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        List<AclBinding> bindings = new ArrayList<>();
        for (int i = 1; i < args.length; i++) {
            String[] f = args[i].split("\\|");
            // Strimzi's pattern types are literal and prefix; Kafka's LITERAL and PREFIXED.
            PatternType pattern = f[3].equals("prefix") ? PatternType.PREFIXED : PatternType.LITERAL;
            ResourcePattern resource = new ResourcePattern(
                ResourceType.fromString(f[1].toUpperCase(Locale.ROOT)), f[2], pattern);
            AclOperation operation = AclOperation.fromString(f[4].replaceAll("([a-z])([A-Z])", "$1_$2"));
            bindings.add(new AclBinding(resource,
                new AccessControlEntry(f[0], "*", operation, AclPermissionType.ALLOW)));
        }
        try (Admin admin = Admin.create(props)) {
            admin.createAcls(bindings).all().get();
        }
        System.out.println("created " + bindings.size() + " ACL bindings");
    }
}
