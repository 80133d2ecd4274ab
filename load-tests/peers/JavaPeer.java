// The Java peer of load-tests/bench: the per-document intake work a team would write with the
// JDK's JAXP (DOM parse, javax.xml.validation) and Debian's Apache Santuario
// (libxml-security-java), on one thread. The same work as load-tests/peers/python_peer.py: parse
// the MHM envelope, validate it (MHM XSD), decode and parse the Detail, validate it (the kmehr
// messageservices wrapper given as --detail-xsd), then a XAdES-BES detached signature over the
// Detail like codecs/xades.h (base64 then exc-c14n reference to #<Detail/@Id>, a SignedProperties
// reference, X509Data leaf + chain), its base64 into a Xades element after Detail, and the
// envelope serialised. Key, schemas and factories are made once.
//
// Compiled at bench time: javac -cp /usr/share/java/xmlsec.jar JavaPeer.java
// Prints one JSON line: {"docs_per_s": documents per CPU second of the process, ...}.
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileInputStream;
import java.lang.management.ManagementFactory;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.PrivateKey;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.UUID;
import javax.xml.XMLConstants;
import javax.xml.parsers.DocumentBuilder;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.transform.OutputKeys;
import javax.xml.transform.Transformer;
import javax.xml.transform.TransformerFactory;
import javax.xml.transform.dom.DOMSource;
import javax.xml.transform.stream.StreamResult;
import javax.xml.validation.Schema;
import javax.xml.validation.SchemaFactory;
import javax.xml.validation.Validator;
import org.apache.xml.security.Init;
import org.apache.xml.security.c14n.Canonicalizer;
import org.apache.xml.security.signature.ObjectContainer;
import org.apache.xml.security.signature.XMLSignature;
import org.apache.xml.security.transforms.Transforms;
import org.apache.xml.security.utils.Constants;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.Node;

public final class JavaPeer {
  static final String COMMONS = "urn:be:fgov:ehealth:mycarenet:commons:protocol:v3";
  static final String DS = Constants.SignatureSpecNS;
  static final String XADES = "http://uri.etsi.org/01903/v1.3.2#";
  static final String SIGNED_PROPS_TYPE = "http://uri.etsi.org/01903#SignedProperties";
  static final String SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256";

  final DocumentBuilder builder;
  final Validator envelopeValidator;
  final Validator detailValidator;
  final PrivateKey key;
  final List<X509Certificate> certs = new ArrayList<>();
  final String certDigest;
  final String issuer;
  final BigInteger serial;
  final Transformer serializer;

  JavaPeer(String envelopeXsd, String detailXsd, String keyDer, String cert, String chain)
      throws Exception {
    DocumentBuilderFactory dbf = DocumentBuilderFactory.newInstance();
    dbf.setNamespaceAware(true);
    dbf.setFeature(XMLConstants.FEATURE_SECURE_PROCESSING, true);
    dbf.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
    dbf.setExpandEntityReferences(false);
    builder = dbf.newDocumentBuilder();
    SchemaFactory sf = SchemaFactory.newInstance(XMLConstants.W3C_XML_SCHEMA_NS_URI);
    Schema envelope = sf.newSchema(new File(envelopeXsd));
    Schema detail = sf.newSchema(new File(detailXsd));
    envelopeValidator = envelope.newValidator();
    detailValidator = detail.newValidator();
    key = KeyFactory.getInstance("RSA")
              .generatePrivate(new PKCS8EncodedKeySpec(Files.readAllBytes(Paths.get(keyDer))));
    CertificateFactory cf = CertificateFactory.getInstance("X.509");
    try (FileInputStream in = new FileInputStream(cert)) {
      certs.add((X509Certificate) cf.generateCertificate(in));
    }
    if (chain != null) {
      try (FileInputStream in = new FileInputStream(chain)) {
        for (java.security.cert.Certificate c : cf.generateCertificates(in)) {
          certs.add((X509Certificate) c);
        }
      }
    }
    X509Certificate leaf = certs.get(0);
    certDigest = Base64.getEncoder().encodeToString(
        MessageDigest.getInstance("SHA-256").digest(leaf.getEncoded()));
    issuer = leaf.getIssuerX500Principal().getName("RFC2253");
    serial = leaf.getSerialNumber();
    serializer = TransformerFactory.newInstance().newTransformer();
    serializer.setOutputProperty(OutputKeys.ENCODING, "UTF-8");
  }

  static Element child(Element parent, String ns, String local) {
    for (Node n = parent.getFirstChild(); n != null; n = n.getNextSibling()) {
      if (n instanceof Element && ns.equals(n.getNamespaceURI()) && local.equals(n.getLocalName())) {
        return (Element) n;
      }
    }
    return null;
  }

  static Element add(Document doc, Element parent, String ns, String qname, String text) {
    Element e = doc.createElementNS(ns, qname);
    if (text != null) {
      e.setTextContent(text);
    }
    parent.appendChild(e);
    return e;
  }

  byte[] process(byte[] data) throws Exception {
    Document doc = builder.parse(new ByteArrayInputStream(data));
    envelopeValidator.validate(new DOMSource(doc));
    Element root = doc.getDocumentElement();
    Element detail = child(root, COMMONS, "Detail");
    byte[] payload = Base64.getMimeDecoder().decode(detail.getTextContent());
    Document detailDoc = builder.parse(new ByteArrayInputStream(payload));
    detailValidator.validate(new DOMSource(detailDoc));
    return sign(doc, root, detail);
  }

  byte[] sign(Document doc, Element root, Element detail) throws Exception {
    String sid = "xmldsig-" + UUID.randomUUID();
    detail.setIdAttributeNS(null, "Id", true);
    XMLSignature sig = new XMLSignature(doc, "", XMLSignature.ALGO_ID_SIGNATURE_RSA_SHA256,
                                        Canonicalizer.ALGO_ID_C14N_EXCL_OMIT_COMMENTS);
    sig.setId(sid);
    root.appendChild(sig.getElement());  // in the document while signing: #Id resolves
    ObjectContainer object = new ObjectContainer(doc);
    Element qp = doc.createElementNS(XADES, "xades:QualifyingProperties");
    qp.setAttributeNS(XMLConstants.XMLNS_ATTRIBUTE_NS_URI, "xmlns:xades", XADES);
    qp.setAttributeNS(null, "Target", "#" + sid);
    Element sp = add(doc, qp, XADES, "xades:SignedProperties", null);
    sp.setAttributeNS(null, "Id", sid + "-xades-signedprops");
    sp.setIdAttributeNS(null, "Id", true);
    Element ssp = add(doc, sp, XADES, "xades:SignedSignatureProperties", null);
    add(doc, ssp, XADES, "xades:SigningTime",
        Instant.now().truncatedTo(ChronoUnit.SECONDS).toString());
    Element cert = add(doc, add(doc, ssp, XADES, "xades:SigningCertificate", null), XADES,
                       "xades:Cert", null);
    Element cd = add(doc, cert, XADES, "xades:CertDigest", null);
    add(doc, cd, DS, "ds:DigestMethod", null).setAttributeNS(null, "Algorithm", SHA256);
    add(doc, cd, DS, "ds:DigestValue", certDigest);
    Element is = add(doc, cert, XADES, "xades:IssuerSerial", null);
    add(doc, is, DS, "ds:X509IssuerName", issuer);
    add(doc, is, DS, "ds:X509SerialNumber", serial.toString());
    object.appendChild(qp);
    sig.appendObject(object);

    Transforms detailTransforms = new Transforms(doc);
    detailTransforms.addTransform(Transforms.TRANSFORM_BASE64_DECODE);
    detailTransforms.addTransform(Transforms.TRANSFORM_C14N_EXCL_OMIT_COMMENTS);
    sig.addDocument("#" + detail.getAttribute("Id"), detailTransforms, SHA256);
    Transforms propsTransforms = new Transforms(doc);
    propsTransforms.addTransform(Transforms.TRANSFORM_C14N_EXCL_OMIT_COMMENTS);
    sig.addDocument("#" + sid + "-xades-signedprops", propsTransforms, SHA256, null,
                    SIGNED_PROPS_TYPE);
    org.apache.xml.security.keys.content.X509Data x509 =
        new org.apache.xml.security.keys.content.X509Data(doc);
    for (X509Certificate c : certs) {
      x509.addCertificate(c);
    }
    sig.getKeyInfo().add(x509);
    sig.sign(key);
    root.removeChild(sig.getElement());

    ByteArrayOutputStream sigBytes = new ByteArrayOutputStream();
    serializer.transform(new DOMSource(sig.getElement()), new StreamResult(sigBytes));
    Element xades = doc.createElementNS(COMMONS, "Xades");
    xades.setTextContent(Base64.getEncoder().encodeToString(sigBytes.toByteArray()));
    root.insertBefore(xades, detail.getNextSibling());
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    serializer.transform(new DOMSource(doc), new StreamResult(out));
    return out.toByteArray();
  }

  public static void main(String[] args) throws Exception {
    String envelopeXsd = null, detailXsd = null, envelope = null, key = null, cert = null;
    String chain = null, outFile = null;
    double seconds = 5, warmup = 2;
    for (int i = 0; i + 1 < args.length; i += 2) {
      switch (args[i]) {
        case "--envelope-xsd": envelopeXsd = args[i + 1]; break;
        case "--detail-xsd": detailXsd = args[i + 1]; break;
        case "--envelope": envelope = args[i + 1]; break;
        case "--key": key = args[i + 1]; break;
        case "--cert": cert = args[i + 1]; break;
        case "--chain": chain = args[i + 1]; break;
        case "--out": outFile = args[i + 1]; break;
        case "--seconds": seconds = Double.parseDouble(args[i + 1]); break;
        case "--warmup": warmup = Double.parseDouble(args[i + 1]); break;
        default: throw new IllegalArgumentException("unknown option " + args[i]);
      }
    }
    Init.init();
    byte[] data = Files.readAllBytes(Paths.get(envelope));
    JavaPeer peer = new JavaPeer(envelopeXsd, detailXsd, key, cert, chain);
    byte[] signed = peer.process(data);
    if (outFile != null) {
      Files.write(Paths.get(outFile), signed);
    }
    long end = System.nanoTime() + (long) (warmup * 1e9);
    while (System.nanoTime() < end) {
      peer.process(data);
    }
    com.sun.management.OperatingSystemMXBean os =
        (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
    long c0 = os.getProcessCpuTime();
    long w0 = System.nanoTime();
    long docs = 0;
    while (System.nanoTime() - w0 < (long) (seconds * 1e9)) {
      peer.process(data);
      ++docs;
    }
    double cpu = (os.getProcessCpuTime() - c0) / 1e9;
    double wall = (System.nanoTime() - w0) / 1e9;
    System.out.printf(java.util.Locale.ROOT,
                      "{\"peer\": \"java\", \"docs\": %d, \"cpu_s\": %.3f, \"wall_s\": %.3f, "
                          + "\"docs_per_s\": %.3f, \"wall_docs_per_s\": %.3f, \"java\": \"%s\"}%n",
                      docs, cpu, wall, docs / cpu, docs / wall, System.getProperty("java.version"));
  }
}
