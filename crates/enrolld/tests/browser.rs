//! The web application in a real browser: Playwright (web-tests/, from
//! the npm registry) driving Debian's Chromium against the real `enrolld`,
//! signing in with the PKCS#12 credentials Enroll issued. The scenarios
//! are in `web-tests/scenarios.mjs`; this test prepares the service and
//! checks the database afterwards.
//!
//! Needs node, /usr/bin/chromium and `npm ci --prefix web-tests` (the CI
//! script installs them); anything missing fails the test. Screenshots go
//! to `$CARGO_TARGET_TMPDIR/browser/`.

// A panic in a test is a failed test: unwrapping is how tests say so.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing)]

mod kit;

use std::path::PathBuf;
use std::process::Command;

use kit::*;

const CHROMIUM: &str = "/usr/bin/chromium";

fn web_tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web-tests")
}

#[test]
fn managers_and_the_administrator_in_chromium() {
    let node = tool("node");
    assert!(
        std::path::Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is needed by this test: apt-get install chromium"
    );
    let scenarios = web_tests_dir();
    assert!(
        scenarios.join("node_modules/playwright-core").is_dir(),
        "Playwright is needed by this test: npm ci --prefix {}",
        scenarios.display()
    );
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();

    let tmp = TempDir::new("browser");
    let data = tmp.path("data");
    init_service(&data, &[]);
    let server = Server::start(&data);
    let base = format!("https://localhost:{}", server.port);
    let d = |args: &[&str]| {
        let mut c = Command::new(enrolld_bin());
        c.args(args).arg("--data").arg(&data);
        c
    };
    ok(&mut d(&[
        "org",
        "add",
        "--code",
        "J1CFRA",
        "--name",
        "France - La Poste",
        "--country",
        "FR",
    ]));
    ok(&mut d(&[
        "org",
        "add",
        "--code",
        "D2DEPO",
        "--name",
        "Deutsche Post",
        "--country",
        "DE",
    ]));
    let pkg = |org: &str| {
        let out = tmp.path(&format!("pkg-{org}"));
        ok(d(&[
            "package", "create", "--org", org, "--env", "Prod", "--type", "user", "--url", &base,
        ])
        .arg("--out")
        .arg(&out));
        package_credential(&out, "Prod")
    };
    let fr = pkg("J1CFRA");
    let de = pkg("D2DEPO");
    let key = tmp.path("csr.key");
    rsa_key(&key);
    let ca = data.join("admin/ca.pem");
    let submit = |cred: &str, cn: &str, desc: &str| {
        api_submit(&base, &ca, cred, &key, cn, desc, &tmp.path(""))
    };
    let hw = |n: u32| format!("40B0343FA07DBFEBFBFF000906E9{n:032X}");
    let front_desk = submit(&fr, &hw(1), "Office 12, front desk");
    let warehouse = submit(&fr, &hw(2), "Warehouse scanner, gate 3");
    let xss = submit(&fr, &hw(3), "<script>alert(1)</script>");
    let german = submit(&de, &hw(4), "Bonn mail room");

    let manager_a = tmp.path("manager-a.p12");
    let (pass_a, _) = manager_add(&data, "manager-a", Some("J1CFRA"), &manager_a);
    let manager_b = tmp.path("manager-b.p12");
    let (pass_b, _) = manager_add(&data, "manager-b", Some("D2DEPO"), &manager_b);
    let admin_pass = std::fs::read_to_string(data.join("admin/admin.p12.passphrase")).unwrap();

    let config = serde_json::json!({
        "base": base,
        "chromium": CHROMIUM,
        "screenshots": shots,
        "downloads": tmp.path(""),
        "admin": {"p12": data.join("admin/admin.p12"), "passphrase": admin_pass.trim()},
        "manager_a": {"p12": manager_a, "passphrase": pass_a, "org": "J1CFRA"},
        "manager_b": {"p12": manager_b, "passphrase": pass_b, "org": "D2DEPO"},
        "requests": {"front_desk": front_desk, "warehouse": warehouse, "xss": xss, "german": german},
    });
    let config_path = tmp.path("browser.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let out = run(Command::new(&node)
        .arg(scenarios.join("scenarios.mjs"))
        .env("ENROLL_BROWSER_CONFIG", &config_path)
        .current_dir(&scenarios));
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the browser scenarios failed ({:?}):\n{stdout}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );

    // What the browser did is in the database.
    let show = |id: i64| json(&ok(&mut d(&["request", "show", &id.to_string(), "--json"])));
    let approved = show(front_desk);
    assert_eq!(approved["status"], "Approved");
    assert_eq!(approved["decided_by"], "web:manager-a");
    assert_eq!(
        show(german)["status"],
        "Pending",
        "manager A decided another organization's request"
    );
    let managers = json(&ok(&mut d(&["manager", "list", "--json"])));
    assert!(
        managers
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "carol" && m["org"] == "J1CFRA"),
        "the administrator's new manager is missing: {managers}"
    );
    let packages = json(&ok(&mut d(&["package", "list", "--json"])));
    assert!(
        packages
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["environment"] == "Test"),
        "the package made in the browser is missing: {packages}"
    );
    for shot in [
        "queue.png",
        "detail.png",
        "queue-phone.png",
        "detail-phone.png",
    ] {
        let len = std::fs::metadata(shots.join(shot))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(len > 10_000, "screenshot {shot} is missing or empty");
    }
    println!("screenshots in {}", shots.display());
    // Whatever happened above, the database's invariants hold.
    let check = json(&ok(&mut d(&["check", "--json"])));
    assert_eq!(check["consistent"], true, "{check}");
    server.stop();
}
